// Checkerboard warped by a swirl, drawn in GLSL Sandbox surface coordinates.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform float time;
uniform vec2 resolution;
varying vec2 surfacePosition;

void main(void) {
    vec2 p = surfacePosition * 4.0;
    float r = length(p);
    float a = atan(p.y, p.x) + sin(time * 0.7) * 2.0 / (r + 0.5);
    vec2 q = r * vec2(cos(a), sin(a)) + time * 0.3;
    float check = mod(floor(q.x) + floor(q.y), 2.0);
    vec3 col = mix(vec3(0.1, 0.6, 0.55), vec3(0.95, 0.85, 0.3), check);
    col *= 0.6 + 0.4 * cos(r * 2.0 - time);
    gl_FragColor = vec4(col, 1.0);
}
