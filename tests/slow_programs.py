"""Programs whose frames outlast any budget a test sets, without guessing how fast this machine is."""

# llvmpipe stops a loop after 65,535 iterations a pixel, so a frame always ends: this one makes every iteration
# cost 32 sines, minutes a frame at 96 px. Only a deadline that kills the drawing ends it in a test.
_STEP = "s = fract(sin(s * 12.9898 + float(i)) * 43758.5453); "
ENDLESS_FRAME = (
    "void mainImage(out vec4 c, in vec2 p) {\n    float s = p.x;\n"
    f"    for (int i = 0; i < 65000; i++) {{ {_STEP * 32}}}\n    c = vec4(s);\n}}\n"
)
