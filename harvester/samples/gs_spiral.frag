// Rotating logarithmic spiral arms (GLSL Sandbox dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform float time;
uniform vec2 resolution;

void main(void) {
    vec2 p = (gl_FragCoord.xy * 2.0 - resolution) / min(resolution.x, resolution.y);
    float r = length(p), a = atan(p.y, p.x);
    float arms = sin(5.0 * a + 6.0 * log(r + 0.001) - time * 2.0);
    vec3 col = 0.5 + 0.5 * cos(arms * 1.5 + r * 3.0 - time + vec3(0.0, 2.0, 4.0));
    col *= smoothstep(1.6, 0.1, r) + 0.15;
    gl_FragColor = vec4(col, 1.0);
}
