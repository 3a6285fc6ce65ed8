"""The case lists, one module per loss (cases/<loss>.py, each with a cases()
that returns its list).  CASES maps a loss name to that function; the files
are written in the order of LOSS_NAMES (common.py)."""
from . import (bce, bce_dice, ce, dice, dice_focal, focal, focal_tversky, generalized_dice,
               iou, sensitivity_specificity, tversky)

CASES = {
    "bce": bce.cases, "ce": ce.cases, "focal": focal.cases, "dice": dice.cases, "iou": iou.cases,
    "tversky": tversky.cases, "focal_tversky": focal_tversky.cases,
    "sensitivity_specificity": sensitivity_specificity.cases,
    "generalized_dice": generalized_dice.cases, "bce_dice": bce_dice.cases,
    "dice_focal": dice_focal.cases,
}
