// Marble: turbulence-bent sine veins in stone colours (Book of Shaders dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform vec2 u_resolution;
uniform float u_time;

float random(vec2 st) { return fract(sin(dot(st, vec2(12.9898, 78.233))) * 43758.5453123); }

float noise(vec2 st) {
    vec2 i = floor(st), f = fract(st);
    vec2 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(random(i), random(i + vec2(1.0, 0.0)), u.x), mix(random(i + vec2(0.0, 1.0)), random(i + vec2(1.0, 1.0)), u.x), u.y);
}

float turbulence(vec2 st) {
    float t = 0.0, a = 1.0;
    for (int i = 0; i < 5; i++) { t += abs(noise(st) - 0.5) * a; st *= 2.0; a *= 0.5; }
    return t;
}

void main() {
    vec2 st = gl_FragCoord.xy / u_resolution.y * 3.0;
    float v = sin(st.x * 3.0 + st.y + turbulence(st + u_time * 0.1) * 9.0);
    v = 0.5 + 0.5 * v;
    vec3 color = mix(vec3(0.12, 0.22, 0.3), vec3(0.92, 0.9, 0.85), pow(v, 0.5));
    color = mix(color, vec3(0.75, 0.5, 0.25), smoothstep(0.9, 1.0, v) * 0.6);
    gl_FragColor = vec4(color, 1.0);
}
