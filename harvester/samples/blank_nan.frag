// Deliberately broken: every pixel is NaN, the square root of a negative number (expected: blank).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform float time;
uniform vec2 resolution;

void main(void) {
    vec2 uv = gl_FragCoord.xy / resolution;
    float broken = sqrt(-1.0 - uv.x - time);
    gl_FragColor = vec4(broken, uv.y * broken, 0.5 * broken, 1.0);
}
