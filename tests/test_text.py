"""Printed advice wrapped to the page width (tlbook.diagnostics.text), and the findings that print with it."""

from tlbook import diagnostics


def test_findings_print_wrapped_to_the_page_width():
    dx = diagnostics
    finding = dx.Finding("uniform-output", "failure", "word " * 60 + "a-very-long-unbreakable-token" * 4, {})
    lines = str(finding).splitlines()
    assert len(lines) > 2 and lines[0].startswith("[failure] uniform-output: word")
    assert all(len(line) <= dx.TEXT_WIDTH for line in lines[:-1])  # only an unbreakable word may run over
    assert all(line.startswith("  ") for line in lines[1:])
    assert " ".join(str(finding).split()) == f"[failure] uniform-output: {' '.join(finding.message.split())}"
    assert dx.wrap("short") == "short"
    log = "Epoch 1/2\n" + "loss: 2.3026 - " * 10 + "\nEpoch 2/2"
    wrapped = dx.wrap(log).splitlines()
    assert wrapped[0] == "Epoch 1/2" and wrapped[-1] == "Epoch 2/2"  # the log's own line breaks stay
    assert len(wrapped) > 3 and all(len(line) <= dx.TEXT_WIDTH for line in wrapped)
