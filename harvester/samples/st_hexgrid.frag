// Hexagonal grid with pulsing cells and a travelling wave of light.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

vec4 hexCoords(vec2 uv) {
    const vec2 s = vec2(1.0, 1.7320508);
    vec4 c = floor(vec4(uv, uv - vec2(0.5, 1.0)) / s.xyxy) + 0.5;
    vec4 h = vec4(uv - c.xy * s, uv - (c.zw + 0.5) * s);
    return dot(h.xy, h.xy) < dot(h.zw, h.zw) ? vec4(h.xy, c.xy) : vec4(h.zw, c.zw + 0.5);
}

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = (fragCoord - 0.5 * iResolution.xy) / iResolution.y * 7.0;
    vec4 h = hexCoords(uv);
    vec2 q = abs(h.xy);
    float edge = 0.5 - max(dot(q, normalize(vec2(1.0, 1.7320508))), q.x);
    float wave = sin(length(h.zw) * 0.8 - iTime * 2.0);
    vec3 col = 0.5 + 0.5 * cos(h.z * 0.4 + h.w * 0.3 + iTime + vec3(0.0, 2.0, 4.0));
    col *= 0.4 + 0.6 * smoothstep(-0.5, 1.0, wave);
    col *= smoothstep(0.0, 0.06, edge);
    fragColor = vec4(col, 1.0);
}
