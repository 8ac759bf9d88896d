// Deliberately slow: a 65,535-iteration loop with a costly body for every pixel (expected: timeout).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

#define STEP(k) acc = fract(acc * 1.0001 + vec3(sin(p.x * fi + k), cos(p.y * fi - k), tan(acc.x + fi * k)));
#define STEP4(k) STEP(k) STEP(k + 0.1) STEP(k + 0.2) STEP(k + 0.3)

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec3 acc = vec3(0.0);
    vec2 p = fragCoord / iResolution.y + iTime;
    for (int i = 0; i < 65535; i++) {
        float fi = float(i);
        STEP4(1.0) STEP4(2.0) STEP4(3.0) STEP4(4.0)
        STEP4(5.0) STEP4(6.0) STEP4(7.0) STEP4(8.0)
    }
    fragColor = vec4(acc, 1.0);
}
