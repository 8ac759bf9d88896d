"""A simulation that proves it was simulated: Buffer A counts the frames into its own red, once a step."""

from renderer.jobs import BufferPass, ChannelBinding, ProgramSource

_A = ChannelBinding("buffer", "buffer_a")
_COUNT_FRAMES = "void mainImage(out vec4 c, in vec2 f) { c = vec4(texelFetch(iChannel0, ivec2(f), 0).x + 1.0); }\n"
# The image: the count and iFrame, base 256 (red + 256 green; blue + 256 alpha).
_SHOW_COUNT = ("void mainImage(out vec4 c, in vec2 f) {\n"
               "    float n = texelFetch(iChannel0, ivec2(f), 0).x;\n"
               "    c = vec4(mod(n, 256.0), floor(n / 256.0), mod(float(iFrame), 256.0), floor(float(iFrame) / 256.0)) / 255.0;\n"
               "}\n")
COUNTER = ProgramSource("shadertoy", _SHOW_COUNT, channels=("buffer", None, None, None), inputs=(_A, None, None, None),
                        buffers=(BufferPass("buffer_a", _COUNT_FRAMES, (_A, None, None, None)),), buffer_passes=1)
