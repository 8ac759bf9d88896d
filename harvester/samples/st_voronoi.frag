// Voronoi cells with moving seeds, each cell its own colour, borders drawn dark.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

vec2 hash2(vec2 p) {
    p = vec2(dot(p, vec2(127.1, 311.7)), dot(p, vec2(269.5, 183.3)));
    return fract(sin(p) * 43758.5453);
}

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.y * 5.0;
    vec2 cell = floor(uv), f = fract(uv);
    float best = 8.0, second = 8.0;
    vec2 bestId = vec2(0.0);
    for (int j = -1; j <= 1; j++)
    for (int i = -1; i <= 1; i++) {
        vec2 g = vec2(float(i), float(j));
        vec2 o = 0.5 + 0.5 * sin(iTime * 0.8 + 6.2831 * hash2(cell + g));
        float d = length(g + o - f);
        if (d < best) { second = best; best = d; bestId = cell + g; }
        else if (d < second) second = d;
    }
    vec3 col = 0.5 + 0.5 * cos(6.2831 * hash2(bestId).x + vec3(0.0, 2.1, 4.2));
    col *= 0.75 + 0.25 * (1.0 - best);
    col *= smoothstep(0.02, 0.07, second - best);
    fragColor = vec4(col, 1.0);
}
