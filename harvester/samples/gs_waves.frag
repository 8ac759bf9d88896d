// Layered sine waves in sunset colours (GLSL Sandbox dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform float time;
uniform vec2 mouse;
uniform vec2 resolution;

void main(void) {
    vec2 uv = gl_FragCoord.xy / resolution.xy;
    vec3 col = mix(vec3(0.98, 0.55, 0.3), vec3(0.25, 0.1, 0.45), uv.y);
    for (int i = 0; i < 6; i++) {
        float fi = float(i);
        float h = 0.15 + fi * 0.11 + 0.05 * sin(uv.x * (6.0 + fi) + time * (0.6 + 0.2 * fi) + fi);
        vec3 layer = 0.5 + 0.5 * cos(fi * 0.6 + vec3(0.0, 1.0, 2.5));
        col = mix(col, layer * (1.0 - fi * 0.1), smoothstep(h + 0.01, h, uv.y) * 0.7);
    }
    gl_FragColor = vec4(col, 1.0);
}
