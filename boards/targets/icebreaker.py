"""1BitSquared iCEBreaker: Lattice iCE40 UP5K (SG48), 12 MHz oscillator, FT2232H (channel B is
the UART; channel A programs the SPI flash).

The UP5K is small for the core and the link engine together: the default is one lane at 18 MHz
(64-32-10 and 64-64-10 networks use 4,418 to 5,215 of 5,280 logic cells, momentum the most, and
reach 20.8 to 22.7 MHz; two lanes fit fifo, random and sync, not momentum; see
docs/benchmarks/boards.md). Weights live in SPRAM,
which the bitstream cannot initialize: the host loads them over the link after configuration.
A 250-byte payload keeps each link buffer in one block RAM. Two LEDs on
the main board (red ``led 0``, green ``led 1``): ``leds[0]`` and ``leds[1]`` of the top.
"""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from ._base import Target

TARGET = Target(
    name="icebreaker",
    description="1BitSquared iCEBreaker (iCE40 UP5K, 12 MHz oscillator, FT2232H UART)",
    platform=ICEBreakerPlatform,
    family="ice40",
    device="iCE40UP5K",
    fit_device="ice40-up5k",
    osc_resource="clk12",
    osc_hz=12_000_000,
    clock_hz=18_000_000,
    lanes=1,
    weight_ram="spram",
    baud=1_000_000,  # 18 MHz / 1 Mbaud = 18 clocks per bit, exact; FT2232H: 12 MHz / 12
    max_payload=250,
    trace_depth=256,
    uart=("uart", 0),
    leds=(("led", 0), ("led", 1)),
    capacity={"lut": 5280, "ff": 5280, "bram": 30, "spram": 4, "dsp": 8},
    synth_opts=("-dsp",),
    # iceprog writes the SPI flash (the iCEBreaker boots from it); -S would load SRAM, which
    # needs the board's jumpers changed.
    programmer=("iceprog", "{bitstream}"),
    programmer_install="apt-get install --no-install-recommends fpga-icestorm (iceprog), and a "
    "udev rule giving your user access to the FTDI device (0403:6010)",
    bitstream_suffix=".bin",
)
