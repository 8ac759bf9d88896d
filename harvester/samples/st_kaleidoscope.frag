// Kaleidoscope: iterated folding and rotation of the plane, coloured by orbit distance.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

mat2 rot(float a) { float c = cos(a), s = sin(a); return mat2(c, -s, s, c); }

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 p = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    float acc = 0.0;
    vec3 col = vec3(0.0);
    for (int i = 0; i < 7; i++) {
        p = abs(p) - 0.45;
        p *= rot(iTime * 0.15 + float(i) * 0.6);
        p *= 1.25;
        float d = length(p);
        acc += exp(-6.0 * d);
        col += (0.5 + 0.5 * cos(float(i) * 0.8 + iTime * 0.5 + vec3(0.0, 2.0, 4.0))) * exp(-3.0 * abs(p.x * p.y));
    }
    col = col / 7.0 + vec3(acc * 0.1);
    fragColor = vec4(col, 1.0);
}
