// Domain-warped fractal noise: marbled clouds in warm and cold tones.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

float hash(vec2 p) { return fract(sin(dot(p, vec2(12.9898, 78.233))) * 43758.5453); }

float noise(vec2 p) {
    vec2 i = floor(p), f = fract(p);
    vec2 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash(i), hash(i + vec2(1, 0)), u.x), mix(hash(i + vec2(0, 1)), hash(i + vec2(1, 1)), u.x), u.y);
}

float fbm(vec2 p) {
    float v = 0.0, a = 0.5;
    for (int i = 0; i < 5; i++) { v += a * noise(p); p = p * 2.03 + 17.0; a *= 0.5; }
    return v;
}

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 p = fragCoord / iResolution.y * 3.0;
    vec2 q = vec2(fbm(p + iTime * 0.05), fbm(p + vec2(5.2, 1.3)));
    vec2 r = vec2(fbm(p + 4.0 * q + vec2(1.7, 9.2) + 0.15 * iTime), fbm(p + 4.0 * q + vec2(8.3, 2.8) + 0.12 * iTime));
    float f = fbm(p + 4.0 * r);
    vec3 col = mix(vec3(0.1, 0.3, 0.6), vec3(0.95, 0.6, 0.2), clamp(f * f * 2.5, 0.0, 1.0));
    col = mix(col, vec3(0.05, 0.05, 0.2), clamp(length(q), 0.0, 1.0) * 0.6);
    col = mix(col, vec3(0.9, 0.95, 1.0), clamp(r.x * r.x, 0.0, 1.0) * 0.5);
    fragColor = vec4(col * 1.2, 1.0);
}
