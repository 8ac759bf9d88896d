// Polar tunnel: stripes and checkers flowing towards the viewer with depth fog.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 p = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    p += 0.2 * vec2(sin(iTime * 0.7), cos(iTime * 0.5));
    float r = length(p), a = atan(p.y, p.x);
    vec2 uv = vec2(0.4 / r + iTime * 0.8, a / 3.14159 * 3.0 + iTime * 0.1);
    float check = mod(floor(uv.x * 4.0) + floor(uv.y * 4.0), 2.0);
    vec3 c1 = 0.5 + 0.5 * cos(uv.x * 0.7 + vec3(0.0, 1.5, 3.0));
    vec3 c2 = 0.5 + 0.5 * cos(uv.y * 2.0 + vec3(4.0, 2.0, 0.0));
    vec3 col = mix(c1, c2, check) * smoothstep(0.0, 0.6, r);
    col += 0.15 * sin(uv.x * 30.0) * r;
    fragColor = vec4(col, 1.0);
}
