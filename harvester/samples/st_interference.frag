// Interference rings from three moving point sources.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 p = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    vec3 col = vec3(0.0);
    for (int i = 0; i < 3; i++) {
        float fi = float(i);
        vec2 s = 0.7 * vec2(sin(iTime * (0.4 + 0.1 * fi) + fi * 2.0), cos(iTime * (0.3 + 0.15 * fi) + fi));
        float w = sin(length(p - s) * 28.0 - iTime * 3.0);
        col[i] = 0.5 + 0.5 * w;
    }
    col = mix(col, col.gbr, 0.3);
    fragColor = vec4(col, 1.0);
}
