// Deliberately slow: 65,535 iterations of a costly body for every pixel (expected: timeout).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec3 acc = vec3(0.0);
    vec2 p = fragCoord / iResolution.y;
    for (int i = 0; i < 65535; i++) {
        float fi = float(i);
        for (int j = 0; j < 65535; j++) {
            float fj = float(j);
            acc += vec3(sin(p.x * fi + fj), cos(p.y * fj + fi), sin(fi * fj * 1e-4 + iTime));
            acc = fract(acc * 1.0001 + vec3(tan(acc.x), exp(-acc.y), log(1.0 + acc.z)));
        }
    }
    fragColor = vec4(fract(acc), 1.0);
}
