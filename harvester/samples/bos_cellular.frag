// Cellular noise: distance to the nearest of a grid of wandering points (Book of Shaders dialect).
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0
#ifdef GL_ES
precision mediump float;
#endif

uniform vec2 u_resolution;
uniform vec2 u_mouse;
uniform float u_time;

vec2 random2(vec2 p) {
    return fract(sin(vec2(dot(p, vec2(127.1, 311.7)), dot(p, vec2(269.5, 183.3)))) * 43758.5453);
}

void main() {
    vec2 st = gl_FragCoord.xy / u_resolution.y * 4.0;
    vec2 i_st = floor(st), f_st = fract(st);
    float m_dist = 1.0;
    for (int y = -1; y <= 1; y++) {
        for (int x = -1; x <= 1; x++) {
            vec2 neighbor = vec2(float(x), float(y));
            vec2 point = 0.5 + 0.5 * sin(u_time + 6.2831 * random2(i_st + neighbor));
            m_dist = min(m_dist, length(neighbor + point - f_st));
        }
    }
    vec3 color = vec3(m_dist * 0.9, m_dist * m_dist * 0.6 + 0.2, 0.8 - m_dist * 0.5);
    color += 1.0 - step(0.03, m_dist);
    color.r += step(0.98, f_st.x) + step(0.98, f_st.y);
    gl_FragColor = vec4(color, 1.0);
}
