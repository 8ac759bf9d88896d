// Tiled pattern: each tile a rotating cross, alternating hues (Book of Shaders dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform vec2 u_resolution;
uniform float u_time;

mat2 rotate2d(float a) { return mat2(cos(a), -sin(a), sin(a), cos(a)); }

float cross2(vec2 st, float size) {
    vec2 a = step(vec2(-size, -size / 4.0), st) - step(vec2(size, size / 4.0), st);
    vec2 b = step(vec2(-size / 4.0, -size), st) - step(vec2(size / 4.0, size), st);
    return max(a.x * a.y, b.x * b.y);
}

void main() {
    vec2 st = gl_FragCoord.xy / u_resolution.y * 5.0;
    vec2 tile = floor(st);
    vec2 f = fract(st) - 0.5;
    float parity = mod(tile.x + tile.y, 2.0);
    f = rotate2d(u_time * (parity * 2.0 - 1.0) + tile.x * 0.4) * f;
    vec3 bg = 0.5 + 0.5 * cos(tile.x * 0.5 + tile.y * 0.7 + vec3(0.0, 2.0, 4.0));
    vec3 color = mix(bg * 0.35, bg, cross2(f, 0.35));
    gl_FragColor = vec4(color, 1.0);
}
