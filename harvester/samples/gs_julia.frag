// Julia set whose constant walks a circle (GLSL Sandbox dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision highp float;
#endif

uniform float time;
uniform vec2 resolution;

void main(void) {
    vec2 z = (gl_FragCoord.xy * 2.0 - resolution) / resolution.y * 1.3;
    vec2 c = 0.7885 * vec2(cos(time * 0.25), sin(time * 0.25));
    float n = 0.0;
    for (int i = 0; i < 128; i++) {
        z = vec2(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c;
        if (dot(z, z) > 16.0) break;
        n += 1.0;
    }
    float s = n / 128.0;
    vec3 col = 0.5 + 0.5 * cos(6.2831 * (sqrt(s) * 1.5 + vec3(0.1, 0.25, 0.4)) + time * 0.3);
    gl_FragColor = vec4(col * step(0.02, 1.0 - s) + vec3(0.02, 0.0, 0.05), 1.0);
}
