// Animated Truchet tiles: quarter-circle arcs whose orientation flips with a hash.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

float hash(vec2 p) { return fract(sin(dot(p, vec2(127.1, 311.7))) * 43758.5453); }

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.y * 8.0 + vec2(iTime * 0.4, iTime * 0.15);
    vec2 cell = floor(uv), f = fract(uv) - 0.5;
    if (hash(cell) > 0.5) f.x = -f.x;
    vec2 corner = f.x > -f.y ? vec2(0.5) : vec2(-0.5);
    float d = abs(length(f - corner) - 0.5);
    float line = smoothstep(0.12, 0.08, d);
    vec3 a = 0.5 + 0.5 * cos(iTime + cell.x * 0.3 + vec3(0.0, 2.0, 4.0));
    vec3 b = 0.5 + 0.5 * cos(iTime * 0.7 + cell.y * 0.4 + vec3(3.0, 1.0, 5.0));
    vec3 col = mix(b * 0.25, a, line);
    col *= 0.8 + 0.2 * sin(40.0 * d - iTime * 4.0);
    fragColor = vec4(col, 1.0);
}
