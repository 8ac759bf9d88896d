// Sun over a rippling sea with a reflected glitter path (GLSL Sandbox dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform float time;
uniform vec2 resolution;

void main(void) {
    vec2 uv = (gl_FragCoord.xy - 0.5 * resolution) / resolution.y;
    float horizon = -0.05;
    vec2 sun = vec2(0.15 * sin(time * 0.1), 0.12 + 0.05 * sin(time * 0.2));
    vec3 col;
    if (uv.y > horizon) {
        col = mix(vec3(1.0, 0.55, 0.25), vec3(0.2, 0.25, 0.6), (uv.y - horizon) * 2.0);
        col += vec3(1.0, 0.8, 0.4) * smoothstep(0.09, 0.07, length(uv - sun));
        col += vec3(1.0, 0.5, 0.2) * 0.3 * exp(-6.0 * length(uv - sun));
    } else {
        float depth = horizon - uv.y;
        float ripple = sin(uv.x * 60.0 / (depth + 0.05) + time * 3.0) * sin(depth * 90.0 - time * 2.0);
        col = mix(vec3(0.35, 0.2, 0.35), vec3(0.05, 0.1, 0.25), depth * 3.0);
        float path = exp(-abs(uv.x - sun.x) * (8.0 + 20.0 * depth));
        col += vec3(1.0, 0.7, 0.35) * path * smoothstep(0.2, 0.9, ripple) * 0.9;
    }
    gl_FragColor = vec4(col, 1.0);
}
