// Plasma: four travelling sine fields mapped through a cosine palette.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

vec3 palette(float t) {
    return 0.5 + 0.5 * cos(6.28318 * (t + vec3(0.0, 0.33, 0.67)));
}

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 p = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    float t = iTime * 0.6;
    float v = sin(p.x * 3.0 + t);
    v += sin(3.0 * (p.x * sin(t / 2.0) + p.y * cos(t / 3.0)) + t);
    vec2 c = p + vec2(sin(t / 5.0), cos(t / 3.0)) * 1.5;
    v += sin(sqrt(10.0 * dot(c, c) + 1.0) + t);
    v += sin(length(p * 4.0 - vec2(cos(t), sin(t))) * 2.0);
    fragColor = vec4(palette(v * 0.25 + t * 0.05), 1.0);
}
