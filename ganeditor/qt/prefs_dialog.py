"""Preferences: compute device (those that exist), tile size, fast mode, where the VGG16 and MTCNN
weights are, the undo history's memory, whether projects embed the photo, what saved images record
(processing history, C2PA signing)."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QMessageBox,
                               QSpinBox, QWidget)

from ganeditor.core.device import available_devices
from ganeditor.qt.settings import Key, Settings
from ganeditor.qt.widgets import hint, section


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
        self.history = QCheckBox("Record the processing history (operations, models, settings)")
        self.history.setChecked(settings.get(Key.PROVENANCE_HISTORY))
        self.cert = QLineEdit(settings.get(Key.C2PA_CERT), placeholderText="signing certificate chain (.pem)")
        self.key = QLineEdit(settings.get(Key.C2PA_KEY), placeholderText="its private key (.pem)")
        form.addRow(section("Saved images"))
        form.addRow("", self.history)
        form.addRow("C2PA certificate:", self.cert)
        form.addRow("C2PA key:", self.key)
        form.addRow(hint("Images made or changed by a model always say so (IPTC digital source type in XMP). With a "
                         "certificate and its key, they also carry signed C2PA Content Credentials."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def accept(self) -> None:
        if bool(self.cert.text().strip()) != bool(self.key.text().strip()):
            QMessageBox.warning(self, "Preferences", "C2PA signing needs both the certificate and its key.")
            return
        s = self.settings
        s.set(Key.DEVICE, self.device.currentText())
        s.set(Key.TILE_SIZE, self.tile.value())
        s.set(Key.FAST_MODE, self.fast.isChecked())
        s.set(Key.VGG16_PATH, self.vgg.text().strip())
        s.set(Key.MTCNN_DIR, self.mtcnn.text().strip())
        s.set(Key.UNDO_MEMORY_MB, self.undo_mb.value())
        s.set(Key.EMBED_PHOTO, self.embed.isChecked())
        s.set(Key.PROVENANCE_HISTORY, self.history.isChecked())
        s.set(Key.C2PA_CERT, self.cert.text().strip())
        s.set(Key.C2PA_KEY, self.key.text().strip())
        super().accept()
