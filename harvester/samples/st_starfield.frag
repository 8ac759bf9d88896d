// Parallax starfield over a drifting nebula gradient.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

float hash(vec2 p) { return fract(sin(dot(p, vec2(41.3, 289.1))) * 17753.7); }

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = (fragCoord - 0.5 * iResolution.xy) / iResolution.y;
    vec3 col = mix(vec3(0.05, 0.0, 0.12), vec3(0.0, 0.15, 0.3), uv.y + 0.5);
    col += vec3(0.5, 0.1, 0.4) * 0.4 * exp(-4.0 * length(uv - 0.3 * vec2(sin(iTime * 0.1), cos(iTime * 0.13))));
    for (int layer = 0; layer < 4; layer++) {
        float depth = 1.0 + float(layer);
        vec2 p = uv * (6.0 * depth) + vec2(iTime * 0.5 / depth * 4.0, float(layer) * 13.0);
        vec2 cell = floor(p), f = fract(p) - 0.5;
        float h = hash(cell + depth);
        vec2 offset = vec2(hash(cell + 3.1), hash(cell + 7.7)) - 0.5;
        float star = smoothstep(0.12 / depth, 0.0, length(f - offset * 0.6));
        col += star * step(0.55, h) * (0.6 + 0.4 * sin(iTime * 3.0 + h * 40.0)) * mix(vec3(1.0, 0.8, 0.6), vec3(0.6, 0.8, 1.0), h);
    }
    fragColor = vec4(col, 1.0);
}
