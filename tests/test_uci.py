"""The UCI codec against DESIGN.md section 1: round trips, check symbol strength, typed input, uniformity."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.core import uci

SIZES = st.sampled_from(range(uci.MIN_BITS, uci.MAX_BITS + 1, 5))


@st.composite
def sized_numbers(draw: st.DrawFn) -> tuple[int, int]:
    bits = draw(SIZES)
    return bits, draw(st.integers(0, 2**bits - 1))


@given(sized_numbers())
def test_encode_parse_round_trip_for_every_size(case: tuple[int, int]) -> None:
    bits, number = case
    code = uci.encode(number, bits)
    assert len(code) == bits // 5
    assert uci.value(code) == number
    assert uci.parse(code, bits) == code
    assert uci.parse(uci.display(code), bits) == code
    assert uci.parse(uci.display(code).lower().replace("-", " "), bits) == code


@given(SIZES)
def test_generated_ids_have_the_size_and_alphabet(bits: int) -> None:
    for code in (uci.generate(bits), *uci.generate_many(3, bits)):
        assert len(code) == bits // 5
        assert set(code) <= set(uci.ALPHABET)


def test_default_is_80_bits_16_symbols() -> None:
    assert len(uci.generate()) == 16
    assert uci.DEFAULT_BITS == 80


def test_zero_padding_most_significant_first() -> None:
    assert uci.encode(0) == "0" * 16
    assert uci.encode(31) == "0" * 15 + "Z"
    assert uci.encode(2**80 - 1) == "Z" * 16
    assert uci.encode(32, 50) == "0000000010"


def test_check_symbol_is_value_mod_37_with_extended_alphabet() -> None:
    assert uci.check_symbol("0" * 16) == "0"
    assert uci.check_symbol(uci.encode(32)) == "*"  # 32 mod 37
    assert uci.check_symbol(uci.encode(36)) == "U"
    assert uci.check_symbol(uci.encode(37)) == "0"
    assert uci.display("7QJ4X9TN2KVBM0RA") == "7QJ4-X9TN-2KVB-M0RA-" + uci.check_symbol("7QJ4X9TN2KVBM0RA")
    assert uci.display("7QJ4X9TN2KVBM0RA", check=False) == "7QJ4-X9TN-2KVB-M0RA"


@settings(max_examples=60)
@given(sized_numbers())
def test_every_single_substitution_is_rejected(case: tuple[int, int]) -> None:
    bits, number = case
    shown = uci.display(uci.encode(number, bits))
    for i, original in enumerate(shown):
        if original == "-":
            continue
        pool = uci.CHECK_ALPHABET if i == len(shown) - 1 else uci.ALPHABET
        for other in pool:
            if other != original:
                with pytest.raises(uci.UCIError):
                    uci.parse(shown[:i] + other + shown[i + 1 :], bits)


@settings(max_examples=200)
@given(sized_numbers())
def test_every_adjacent_transposition_is_rejected(case: tuple[int, int]) -> None:
    bits, number = case
    symbols = uci.display(uci.encode(number, bits)).replace("-", "")
    for i in range(len(symbols) - 1):
        if symbols[i] == symbols[i + 1]:
            continue
        swapped = symbols[:i] + symbols[i + 1] + symbols[i] + symbols[i + 2 :]
        with pytest.raises(uci.UCIError):
            uci.parse(swapped, bits)


def test_typed_forms_are_read_by_the_rules() -> None:
    code = "7QJ4X9TN2KVBM0RA"
    check = uci.check_symbol(code)
    assert uci.parse(f" 7qj4 x9tn-2kvb-m0ra-{check.lower()} ") == code
    assert uci.parse("7QJ4X9TN2KVBMORA") == code  # O for 0
    assert uci.parse("1111111111111111") == uci.parse("IiLl1111111111l1")


def test_mistyped_check_symbol_says_so() -> None:
    code = "7QJ4X9TN2KVBM0RA"
    wrong = next(c for c in uci.CHECK_ALPHABET if c != uci.check_symbol(code))
    with pytest.raises(uci.MistypedError, match="mistyped"):
        uci.parse(code + wrong)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("7QJ4X9TN2KVBM0R!", "'!' at symbol 16"),
        ("7QJ4X9TN2KVBM0RU", "'U' at symbol 16"),
        ("7QJ4X9TN", "has 8 symbols"),
        ("", "empty"),
        ("   - ", "empty"),
        ("7QJ4X9TN2KVBM0RA7QJ", "has 19 symbols"),
    ],
)
def test_bad_codes_get_a_clear_error(typed: str, message: str) -> None:
    with pytest.raises(uci.UCIError, match=message):
        uci.parse(typed)


def test_check_symbol_requirement() -> None:
    code = "7QJ4X9TN2KVBM0RA"
    with pytest.raises(uci.UCIError, match="has 17"):
        uci.parse(code, check=True)
    with pytest.raises(uci.UCIError, match="has 16"):
        uci.parse(code + uci.check_symbol(code), check=False)


def test_unknown_size_readings() -> None:
    code = "7QJ4X9TN2KVBM0RA"
    typed = uci.read_typed(uci.display(code))
    assert code in typed.readings and code + uci.check_symbol(code) in typed.readings
    wrong = next(c for c in uci.ALPHABET if c != uci.check_symbol(code))
    typed = uci.read_typed(code + wrong)
    assert typed.readings == (code + wrong,)
    assert isinstance(typed.problem, uci.MistypedError)
    with pytest.raises(uci.UCIError, match="has 3 symbols"):
        uci.read_typed("ABC")


@pytest.mark.parametrize("bits", [0, 45, 52, 325, 80.0, True, "80"])
def test_sizes_not_allowed(bits: object) -> None:
    with pytest.raises(uci.UCIError, match="size in bits"):
        uci.validate_bits(bits)  # type: ignore[arg-type]


def test_qr_payload_is_alphanumeric_mode_and_never_the_check_symbol() -> None:
    code = "7QJ4X9TN2KVBM0RA"
    assert uci.qr_payload(code) == code
    assert uci.qr_payload(code, "https://example.com/claim/{id}") == f"HTTPS://EXAMPLE.COM/CLAIM/{code}"
    assert set(uci.qr_payload(code, uci.validate_claim_url("https://example.com/c/{id}"))) <= uci.QR_ALPHANUMERIC
    with pytest.raises(uci.UCIError, match="cannot hold"):
        uci.validate_claim_url("https://example.com/claim?id={id}")
    with pytest.raises(uci.UCIError, match="must contain"):
        uci.validate_claim_url("https://example.com/claim")


# Chi-square over 100,000 IDs: per position, 31 degrees of freedom. The critical value is the statistic a
# uniform source exceeds with probability 1e-6 (scipy.stats.chi2.isf(1e-6, 31)), so the 16 positions give a
# false alarm about once in 60,000 runs, while a biased source fails by orders of magnitude.
CRITICAL_31_DOF = 83.64
SAMPLE = 100_000


def chi_square_by_position(codes: list[str]) -> list[float]:
    expected = len(codes) / 32
    stats = []
    for position in range(len(codes[0])):
        counts = Counter(code[position] for code in codes)
        stats.append(sum((counts.get(s, 0) - expected) ** 2 / expected for s in uci.ALPHABET))
    return stats


@pytest.mark.parametrize("bits", [80, 50])
def test_every_symbol_at_every_position_is_uniform(bits: int) -> None:
    stats = chi_square_by_position(uci.generate_many(SAMPLE, bits))
    assert len(stats) == bits // 5
    assert max(stats) < CRITICAL_31_DOF, stats


def test_the_uniformity_test_catches_a_biased_source() -> None:
    # A classic mistake: a byte reduced mod 37 and mapped back into 32 symbols over-weights the first five.
    import secrets

    biased = ["".join(uci.ALPHABET[(b % 37) % 32] for b in secrets.token_bytes(16)) for _ in range(SAMPLE // 4)]
    assert min(chi_square_by_position(biased)) > CRITICAL_31_DOF
