"""The first-run welcome: a short card over the empty canvas with three things to try on the demo
models (a portrait, an old photo, a street), a warning when the installation lost demo models, and
"don't show again".  ``install_welcome(window)`` is the one hook; Help ▸ Welcome shows it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QAction, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFrame, QHBoxLayout, QLabel, QMainWindow, QPushButton, QToolButton,
                               QVBoxLayout, QWidget)

from ganeditor.core.model_store import missing_demo_models
from ganeditor.core.resources import sample_photos
from ganeditor.qt.settings import Key

MAX_WIDTH = 620
THUMB = QSize(84, 56)


@dataclass(frozen=True)
class Suggestion:
    """One thing to try: a sample photo (first whose name starts with ``prefix``) and the panel for it."""

    prefix: str
    title: str
    text: str
    panel: str


SUGGESTIONS = (
    Suggestion("portrait", "A portrait", "Find the face, then change hair, glasses or expression with sliders", "portrait"),
    Suggestion("old", "An old photo", "Remove scratches, dust and fading", "restore"),
    Suggestion("street", "A street", "Turn day into night, then upscale it", "scene"),
)


def sample_for(prefix: str) -> Path | None:
    """The shipped sample photo whose name starts with ``prefix``, if any."""
    return next((p for p in sample_photos() if p.name.lower().startswith(prefix)), None)


def _choice_button(path: Path, title: str, text: str) -> QPushButton:
    """A wide button: the sample's thumbnail, a bold title and one line of what to do with it."""
    b = QPushButton()
    b.setObjectName("welcomeChoice")
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    thumb = QLabel()
    pm = QPixmap(str(path)).scaled(THUMB, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                                   Qt.TransformationMode.SmoothTransformation)  # fmt: skip
    thumb.setPixmap(pm.copy((pm.width() - THUMB.width()) // 2, (pm.height() - THUMB.height()) // 2,
                            THUMB.width(), THUMB.height()))  # the middle of the photo  # fmt: skip
    label = QLabel(f"<b>{title}</b><br>{text}")
    label.setWordWrap(True)
    lay = QHBoxLayout(b)
    lay.setContentsMargins(8, 6, 8, 6)
    lay.addWidget(thumb)
    lay.addWidget(label, 1)
    for w in (thumb, label):
        w.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    b.setMinimumHeight(THUMB.height() + 14)
    return b


class WelcomeCard(QFrame):
    """The card: title, one button per available sample, model warnings, don't-show-again."""

    chosen = Signal(str, str)  # sample path, panel name
    dismissed = Signal(bool)  # True: don't show it again

    def __init__(self, problems: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        self.setMaximumWidth(MAX_WIDTH)
        title = QLabel("Welcome to GAN Editor")
        title.setObjectName("welcomeTitle")
        close = QToolButton(text="✕", autoRaise=True, toolTip="Close the welcome")
        close.clicked.connect(lambda: self.dismissed.emit(self.never.isChecked()))
        head = QHBoxLayout()
        head.addWidget(title, 1)
        head.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        intro = QLabel("Everything runs on this computer, on the demo models that come with the app. Try one:")
        intro.setWordWrap(True)
        choices = QVBoxLayout()
        choices.setSpacing(6)
        self.buttons: dict[str, QPushButton] = {}
        for s in SUGGESTIONS:
            path = sample_for(s.prefix)
            if path is None:
                continue
            b = _choice_button(path, s.title, s.text)
            b.clicked.connect(lambda _=False, p=path, panel=s.panel: self.chosen.emit(str(p), panel))
            choices.addWidget(b)
            self.buttons[s.prefix] = b
        foot = QLabel("Or open your own photo (File ▸ Open…) or drop it here. Images you save say that they "
                      "were made or changed with AI (Edit ▸ Preferences).")  # fmt: skip
        foot.setObjectName("hint")
        foot.setWordWrap(True)
        self.warning = QLabel("<b>This installation is incomplete.</b> " + "; ".join(problems)
                              + ". Reinstall GAN Editor, or open your own model (File ▸ Open model file).")  # fmt: skip
        self.warning.setObjectName("warning")
        self.warning.setWordWrap(True)
        self.warning.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning.setVisible(bool(problems))
        self.never = QCheckBox("Don't show this again")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(20, 14, 14, 16)
        lay.addLayout(head)
        lay.addWidget(intro)
        lay.addLayout(choices)
        lay.addWidget(self.warning)
        lay.addWidget(foot)
        lay.addWidget(self.never)


class _Placer(QObject):
    """Keeps the card centred over the canvas when the canvas is resized."""

    def __init__(self, card: WelcomeCard, canvas: QWidget) -> None:
        super().__init__(card)
        self.card, self.canvas = card, canvas
        canvas.installEventFilter(self)

    def place(self) -> None:
        w = min(MAX_WIDTH, max(320, self.canvas.width() - 40))
        self.card.setFixedWidth(w)
        self.card.adjustSize()
        self.card.move((self.canvas.width() - w) // 2, max(10, (self.canvas.height() - self.card.height()) // 3))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.canvas and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.place()
        return False


def install_welcome(win: QMainWindow) -> WelcomeCard:
    """Put the welcome over ``win``'s canvas (shown on start unless dismissed for good), hide it when a
    document opens, report missing demo models in the card and the status bar, add Help ▸ Welcome."""
    problems = missing_demo_models()
    card = WelcomeCard(problems, win.view)
    placer = _Placer(card, win.view)

    def show_card() -> None:
        placer.place()
        card.show()
        card.raise_()

    def choose(path: str, panel: str) -> None:
        if win.open_path(path, remember=False):
            win.show_panel(panel)

    def dismiss(never: bool) -> None:
        card.hide()
        if never:
            win.settings.set(Key.SHOW_WELCOME, False)

    card.chosen.connect(choose)
    card.dismissed.connect(dismiss)
    win.doc.opened.connect(lambda _path: card.hide())
    act = QAction("&Welcome", win)
    act.triggered.connect(show_card)
    help_menu = next((a.menu() for a in win.menuBar().actions() if a.text().replace("&", "") == "Help"), None)
    if help_menu is not None:
        help_menu.insertAction(help_menu.actions()[0] if help_menu.actions() else None, act)
    card.hide()
    if win.settings.get(Key.SHOW_WELCOME) or problems:
        show_card()
    if problems:
        win.statusBar().showMessage("Incomplete installation: " + "; ".join(problems), 20000)
    return card
