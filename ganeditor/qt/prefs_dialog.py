"""Preferences: compute device (those that exist), tile size, fast mode, where the VGG16 and MTCNN
weights are, the undo history's memory, whether projects embed the photo."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QSpinBox,
                               QWidget)

from ganeditor.core.device import available_devices
from ganeditor.qt.settings import Key, Settings
from ganeditor.qt.widgets import hint


class PreferencesDialog(QDialog):
    """Edits the settings; OK stores them (jobs read them when they start)."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.device = QComboBox()
        self.device.addItems(available_devices())  # only devices that exist here
        self.device.setCurrentIndex(max(0, self.device.findText(settings.get(Key.DEVICE))))
        self.tile = QSpinBox(minimum=0, maximum=8192, singleStep=64, specialValueText="automatic (from free memory)")
        self.tile.setValue(settings.get(Key.TILE_SIZE))
        self.fast = QCheckBox("bf16/fp16 autocast + channels_last (faster, ≤ 2/255 drift)")
        self.fast.setChecked(settings.get(Key.FAST_MODE))
        self.vgg = QLineEdit(settings.get(Key.VGG16_PATH), placeholderText="vgg16-397923af.pth (enables LPIPS)")
        self.mtcnn = QLineEdit(settings.get(Key.MTCNN_DIR), placeholderText="folder with pnet.pt, rnet.pt, onet.pt")
        self.undo_mb = QSpinBox(minimum=64, maximum=65536, singleStep=256, suffix=" MB")
        self.undo_mb.setValue(settings.get(Key.UNDO_MEMORY_MB))
        self.undo_mb.setToolTip("Image data the undo history may keep; the oldest steps are dropped beyond it")
        self.embed = QCheckBox("Keep a copy of the photo in project files (up to 64 MB)")
        self.embed.setChecked(settings.get(Key.EMBED_PHOTO))
        form = QFormLayout(self)
        form.addRow("Device:", self.device)
        form.addRow("Tile size:", self.tile)
        form.addRow("", self.fast)
        form.addRow("VGG16 weights:", self.vgg)
        form.addRow("MTCNN weights:", self.mtcnn)
        form.addRow("Undo history:", self.undo_mb)
        form.addRow("", self.embed)
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
        s.set(Key.UNDO_MEMORY_MB, self.undo_mb.value())
        s.set(Key.EMBED_PHOTO, self.embed.isChecked())
        super().accept()
