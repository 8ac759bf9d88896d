// Raymarched spheres on a checkered floor, orbiting camera, soft shadows.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

float sdSphere(vec3 p, float r) { return length(p) - r; }

vec2 scene(vec3 p) {
    vec2 res = vec2(p.y + 1.0, 0.0);
    for (int i = 0; i < 4; i++) {
        float a = float(i) * 1.5708 + iTime * 0.5;
        vec3 c = vec3(cos(a) * 1.6, -0.3 + 0.3 * sin(iTime + float(i)), sin(a) * 1.6);
        float d = sdSphere(p - c, 0.7);
        if (d < res.x) res = vec2(d, 1.0 + float(i));
    }
    return res;
}

vec3 normalAt(vec3 p) {
    vec2 e = vec2(0.001, 0.0);
    return normalize(vec3(scene(p + e.xyy).x - scene(p - e.xyy).x,
                          scene(p + e.yxy).x - scene(p - e.yxy).x,
                          scene(p + e.yyx).x - scene(p - e.yyx).x));
}

float shadow(vec3 ro, vec3 rd) {
    float k = 1.0, t = 0.05;
    for (int i = 0; i < 32; i++) {
        float h = scene(ro + rd * t).x;
        k = min(k, 8.0 * h / t);
        t += clamp(h, 0.02, 0.3);
        if (h < 0.001 || t > 8.0) break;
    }
    return clamp(k, 0.0, 1.0);
}

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    float a = iTime * 0.2;
    vec3 ro = vec3(5.0 * cos(a), 1.5, 5.0 * sin(a));
    vec3 fw = normalize(-ro), rt = normalize(cross(fw, vec3(0, 1, 0))), up = cross(rt, fw);
    vec3 rd = normalize(uv.x * rt + uv.y * up + 1.8 * fw);
    vec3 col = mix(vec3(0.6, 0.75, 1.0), vec3(0.15, 0.2, 0.45), uv.y * 0.5 + 0.5);
    float t = 0.0;
    for (int i = 0; i < 96; i++) {
        vec2 h = scene(ro + rd * t);
        if (h.x < 0.001) {
            vec3 p = ro + rd * t, n = normalAt(p);
            vec3 light = normalize(vec3(0.6, 0.8, 0.3));
            vec3 base = h.y < 0.5 ? vec3(0.35 + 0.3 * mod(floor(p.x) + floor(p.z), 2.0))
                                  : 0.5 + 0.5 * cos(h.y * 1.7 + vec3(0.0, 2.0, 4.0));
            float diff = max(dot(n, light), 0.0) * shadow(p + n * 0.01, light);
            float spec = pow(max(dot(reflect(rd, n), light), 0.0), 32.0);
            col = base * (0.2 + 0.8 * diff) + spec * 0.5;
            col = mix(col, vec3(0.6, 0.75, 1.0), 1.0 - exp(-0.01 * t * t));
            break;
        }
        t += h.x;
        if (t > 30.0) break;
    }
    fragColor = vec4(pow(col, vec3(0.4545)), 1.0);
}
