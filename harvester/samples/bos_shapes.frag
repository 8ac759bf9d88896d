// Shapes: a circle, a rounded box and a ring drifting over a changing gradient (Book of Shaders dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform vec2 u_resolution;
uniform vec2 u_mouse;
uniform float u_time;

float box(vec2 p, vec2 b, float r) {
    vec2 q = abs(p) - b + r;
    return length(max(q, 0.0)) + min(max(q.x, q.y), 0.0) - r;
}

void main() {
    vec2 st = gl_FragCoord.xy / u_resolution.xy;
    vec2 p = (gl_FragCoord.xy - 0.5 * u_resolution.xy) / u_resolution.y;
    vec3 color = mix(vec3(0.15, 0.2, 0.5), vec3(0.9, 0.3, 0.4), st.x + 0.2 * sin(u_time));
    float circle = length(p - vec2(0.35 * sin(u_time), 0.1)) - 0.15;
    float rbox = box(p - vec2(-0.3, -0.15 + 0.1 * cos(u_time * 1.3)), vec2(0.15, 0.1), 0.04);
    float ring = abs(length(p - vec2(0.2, -0.2)) - 0.12 - 0.03 * sin(u_time * 2.0)) - 0.02;
    color = mix(color, vec3(1.0, 0.85, 0.2), smoothstep(0.005, 0.0, circle));
    color = mix(color, vec3(0.2, 0.9, 0.7), smoothstep(0.005, 0.0, rbox));
    color = mix(color, vec3(1.0), smoothstep(0.005, 0.0, ring));
    gl_FragColor = vec4(color, 1.0);
}
