// Polar flower: petals from cos(n*angle), breathing and turning (Book of Shaders dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform vec2 u_resolution;
uniform float u_time;

void main() {
    vec2 p = (gl_FragCoord.xy - 0.5 * u_resolution.xy) / u_resolution.y;
    float r = length(p) * 2.2;
    float a = atan(p.y, p.x) + u_time * 0.3;
    float petals = abs(cos(a * 3.0 + 0.3 * sin(u_time))) * 0.5 + 0.3;
    float inner = abs(cos(a * 6.0)) * 0.15 + 0.12;
    vec3 color = mix(vec3(0.05, 0.25, 0.15), vec3(0.3, 0.55, 0.2), p.y + 0.5);
    color = mix(color, vec3(0.95, 0.35, 0.55), smoothstep(petals + 0.01, petals, r));
    color = mix(color, vec3(1.0, 0.85, 0.3), smoothstep(inner + 0.01, inner, r));
    color *= 0.85 + 0.15 * sin(r * 20.0 - u_time * 2.0);
    gl_FragColor = vec4(color, 1.0);
}
