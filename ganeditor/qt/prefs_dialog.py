"""Preferences: compute device, tile size, fast mode, where the VGG16 and MTCNN weights are."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QSpinBox,
                               QWidget)

from ganeditor.core.device import DEVICE_CHOICES
from ganeditor.qt.settings import Key, Settings
from ganeditor.qt.widgets import hint


class PreferencesDialog(QDialog):
    """Edits the settings; OK stores them (jobs read them when they start)."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.device = QComboBox()
        self.device.addItems(list(DEVICE_CHOICES))
        self.device.setCurrentText(settings.get(Key.DEVICE))
        self.tile = QSpinBox(minimum=0, maximum=8192, singleStep=64, specialValueText="automatic (from free memory)")
        self.tile.setValue(settings.get(Key.TILE_SIZE))
        self.fast = QCheckBox("bf16/fp16 autocast + channels_last (faster, ≤ 2/255 drift)")
        self.fast.setChecked(settings.get(Key.FAST_MODE))
        self.vgg = QLineEdit(settings.get(Key.VGG16_PATH), placeholderText="vgg16-397923af.pth (enables LPIPS)")
        self.mtcnn = QLineEdit(settings.get(Key.MTCNN_DIR), placeholderText="folder with pnet.pt, rnet.pt, onet.pt")
        form = QFormLayout(self)
        form.addRow("Device:", self.device)
        form.addRow("Tile size:", self.tile)
        form.addRow("", self.fast)
        form.addRow("VGG16 weights:", self.vgg)
        form.addRow("MTCNN weights:", self.mtcnn)
        form.addRow(hint("Weights are never downloaded. Without VGG16 the inversion uses the discriminator or a "
                         "pixel + SSIM loss; without MTCNN you place the 5 face points by hand."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def accept(self) -> None:
        s = self.settings
        s.set(Key.DEVICE, self.device.currentText())
        s.set(Key.TILE_SIZE, self.tile.value())
        s.set(Key.FAST_MODE, self.fast.isChecked())
        s.set(Key.VGG16_PATH, self.vgg.text().strip())
        s.set(Key.MTCNN_DIR, self.mtcnn.text().strip())
        super().accept()
