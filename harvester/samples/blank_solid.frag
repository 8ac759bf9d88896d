// Deliberately blank: one flat colour whatever the time (expected: blank).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    // a tiny ripple below the blank threshold does not make it an image
    float ripple = 0.004 * sin(fragCoord.x * 0.1 + iTime);
    fragColor = vec4(0.2 + ripple, 0.35, 0.5, 1.0);
}
