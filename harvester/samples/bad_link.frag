// Deliberately broken: declares a function it never defines (expected: link_error).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

vec3 shade(vec2 uv);

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    fragColor = vec4(shade(fragCoord / iResolution.xy), 1.0);
}
