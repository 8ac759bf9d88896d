// Lava lamp: thresholded value noise with glowing edges (GLSL Sandbox dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform float time;
uniform vec2 resolution;

float hash(vec2 p) { return fract(sin(dot(p, vec2(12.9898, 78.233))) * 43758.5453); }

float noise(vec2 p) {
    vec2 i = floor(p), f = fract(p);
    vec2 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash(i), hash(i + vec2(1.0, 0.0)), u.x), mix(hash(i + vec2(0.0, 1.0)), hash(i + vec2(1.0, 1.0)), u.x), u.y);
}

void main(void) {
    vec2 uv = gl_FragCoord.xy / resolution.y * 4.0;
    float n = noise(uv + vec2(0.0, -time * 0.4)) * 0.6 + noise(uv * 2.0 + vec2(time * 0.2, -time * 0.7)) * 0.4;
    float blob = smoothstep(0.48, 0.52, n);
    float glow = exp(-abs(n - 0.5) * 18.0);
    vec3 col = mix(vec3(0.25, 0.02, 0.1), vec3(1.0, 0.45, 0.05), blob) + glow * vec3(1.0, 0.8, 0.3) * 0.5;
    gl_FragColor = vec4(col, 1.0);
}
