"""Radiona ULX3S with the 85F: Lattice ECP5 LFE5U-85F (CABGA381, speed 6), 25 MHz oscillator,
FT231X USB UART (also the JTAG programmer).

The core runs at 50 MHz (it reaches about 66 MHz on the ECP5-85F); weights live in block RAM,
initialized by the bitstream. Eight LEDs: ``leds[0..3]`` of the top on LEDs 0..3.
"""

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from ._base import Target

TARGET = Target(
    name="ulx3s",
    description="Radiona ULX3S (ECP5 LFE5U-85F, 25 MHz oscillator, FT231X UART)",
    platform=ULX3S_85F_Platform,
    family="ecp5",
    device="LFE5U-85F",
    fit_device="ecp5-85f",
    osc_resource="clk25",
    osc_hz=25_000_000,
    clock_hz=50_000_000,
    lanes=8,
    weight_ram="bram",
    baud=1_000_000,  # 50 MHz / 1 Mbaud = 50 clocks per bit, exact; FT231X: 3 MHz / 3
    max_payload=1024,
    trace_depth=4096,
    uart=("uart", 0),
    leds=(("led", 0), ("led", 1), ("led", 2), ("led", 3)),
    capacity={"lut": 83640, "ff": 83640, "bram": 208, "spram": 0, "dsp": 156},
    # openFPGALoader loads the FPGA's SRAM (lost at power-off); --write-flash would keep it.
    programmer=("openFPGALoader", "-b", "ulx3s", "{bitstream}"),
    programmer_install="apt-get install --no-install-recommends openfpgaloader, and a udev "
    "rule giving your user access to the FTDI device (0403:6015)",
    bitstream_suffix=".bit",
)
