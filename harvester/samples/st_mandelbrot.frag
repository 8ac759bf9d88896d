// Mandelbrot set with smooth iteration colouring, breathing zoom into a spiral valley.
// Author: harvest contributors
// SPDX-License-Identifier: CC0-1.0

void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 p = (2.0 * fragCoord - iResolution.xy) / iResolution.y;
    float zoom = pow(0.5, 4.0 + 3.0 * sin(iTime * 0.3));
    vec2 c = vec2(-0.7453, 0.1127) + p * zoom;
    vec2 z = vec2(0.0);
    float n = 0.0;
    for (int i = 0; i < 256; i++) {
        z = vec2(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c;
        if (dot(z, z) > 256.0) break;
        n += 1.0;
    }
    vec3 col = vec3(0.0);
    if (n < 256.0) {
        float sn = n - log2(log2(dot(z, z))) + 4.0;
        col = 0.5 + 0.5 * cos(3.0 + sn * 0.15 + iTime * 0.2 + vec3(0.0, 0.6, 1.0));
    }
    fragColor = vec4(col, 1.0);
}
