"""golden -- independent float64 reference values ("golden files") for segloss.

    /usr/bin/python3 tools/gen_golden.py [--out spec/golden] [--only dice,iou]

tools/gen_golden.py is the entry point; this package is the generator.
Every loss of docs/losses.md is written here a second time, independently of
the C kernels, as plain PyTorch tensor formulas in float64: probabilities from
the activation, one-hot targets, masks, per-(n,c) statistics, reductions, and
loss.backward() for d loss / d x.  One JSON file per loss name is written to the
output directory (format: tools/README-golden.md).

The script first runs the self-checks (agreement with PyTorch built-ins, the
invariants of docs/losses.md, gradchecks, hand-derived values at the
conventions' kinks) and a second, loop-based pure-Python implementation of
every loss value that must agree with the tensor implementation on every golden
case.  Any failure aborts with a non-zero exit status before a file is written.

Inputs are generated in float32 from fixed seeds (one per case, derived from its
name), written with shortest round-trip digits of the float64 value of each
float32 (so they parse back to exactly the same float32), and the references
are computed in float64 from those exact values.  Outputs use '%.17g'.
Re-running produces byte-identical files.

Where the formulas leave room, this package makes the choices listed as the
readings R1-R18 in docs/losses.md (section "Readings R1-R18: where the formulas
leave room"); the comments refer to them by number, and the C code makes the
same choices for the golden tests to pass.  "LOSSES.md" in the comments means
docs/losses.md.

Layout (a module imports only those above it):

    registry.py    segloss.losses() of the in-tree build (make first): the
                   names, options, defaults, activations and presets
    common.py      torch set-up, LOSS_NAMES (file order), KNOWN options,
                   default_smooth (the contract's), GoldenError/check,
                   comparisons, rnd32
    reference.py   the losses in PyTorch float64 (t_<loss>, TORCH_LOSS: one
                   entry per loss of the registry)
    scalar.py      the loop-based second implementation (class Scalar)
    selfcheck.py   the self-checks run before anything is written
    case.py        Case, build_inputs, edits (empty_class, mask_all, ...),
                   expectations (expect_zero, ...)
    cases/<loss>.py  one module per loss (combinations included): cases()
                   returns that loss's list; cases/__init__.py finds them by
                   the registry's names
    write.py       guards, JSON formatting, run_case, build_file
    cli.py         main(): arguments, self-checks, writing the files

A new loss: its descriptor in src/loss/registry.c (make), and cases/<loss>.py
with cases(), and -- for a loss that is not a preset of existing ones --
torch_loss(x, t, m, o) and scalar(sc) there; options reach both with the
registry's defaults filled in.  Append new cases at the end of a list: a
case's id holds its position.
"""
