// Deliberately broken: uses a variable that was never declared (expected: compile_error at line 9).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.xy;
    float wave = sin(uv.x * 10.0 + iTime);
    // the next line refers to `brightness`, which does not exist
    fragColor = vec4(uv * brightness, wave, 1.0);
}
