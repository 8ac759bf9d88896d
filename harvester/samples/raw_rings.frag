// Raw program: a plain main() with its own #version, drawing fixed concentric rings.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#version 330 core
out vec4 color;

void main() {
    vec2 p = gl_FragCoord.xy / 32.0;
    float d = length(fract(p) - 0.5);
    color = vec4(0.5 + 0.5 * cos(d * 18.0 + vec3(0.0, 2.0, 4.0)), 1.0);
}
