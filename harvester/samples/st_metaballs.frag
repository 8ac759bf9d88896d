// Metaballs: eight blobs in orbit, iso-surface shaded with a hue per field strength.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 p = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    float field = 0.0;
    vec3 tint = vec3(0.0);
    for (int i = 0; i < 8; i++) {
        float fi = float(i);
        vec2 c = 0.8 * vec2(sin(iTime * 0.7 + fi * 1.3), cos(iTime * 0.9 + fi * 2.1));
        float f = 0.06 / dot(p - c, p - c);
        field += f;
        tint += f * (0.5 + 0.5 * cos(fi + vec3(0.0, 2.0, 4.0)));
    }
    tint /= field;
    float inside = smoothstep(0.95, 1.05, field);
    float rim = smoothstep(0.6, 1.0, field) - inside;
    vec3 col = mix(vec3(0.02, 0.03, 0.08), tint, inside) + rim * vec3(0.9, 0.9, 1.0) * 0.6;
    fragColor = vec4(col, 1.0);
}
