"""The model library: choose the generator, translator and upscaler; see each model's facts."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHeaderView, QLabel, QPushButton, QTextBrowser, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from ganeditor.core.model_store import model_dirs, user_models_dir
from ganeditor.pipelines.catalog import (ROLES, CheckpointFacts, ModelEntry, catalog, classify, describe, format_fact,
                                         identify, model_name, of_kind)
from ganeditor.qt.jobs import Job, Lane

GROUPS = (("generator", "Generators"), ("translator", "Translators"), ("upscaler", "Upscalers"),
          ("restorer", "Restoration models"), ("encoder", "Inversion encoders"), ("directions", "Direction libraries"), ("other", "Other"),
          ("unknown", "Not yet identified"))  # fmt: skip


class ModelsPanel(QWidget):
    """Three role pickers over a tree of every model found, and a facts view."""

    selection_changed = Signal(str, object)  # role, ModelEntry | None

    def __init__(self, lane: Lane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane = lane
        self.entries: list[ModelEntry] = []
        self.extra: list[ModelEntry] = []  # opened from elsewhere this session
        self.identified: dict[Path, ModelEntry] = {}  # files whose kind was found by loading them
        self.pickers: dict[str, QComboBox] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for role in ROLES:
            box = QComboBox()
            box.currentIndexChanged.connect(lambda _i, r=role: self._picked(r))
            self.pickers[role] = box
            form.addRow(f"{role.capitalize()}:", box)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Size"])
        self.tree.setRootIsDecorated(True)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._show_entry)
        self.facts = QTextBrowser()
        self.facts.setOpenExternalLinks(False)
        self.facts.setMinimumHeight(120)
        self.describe_button = QPushButton("Load and describe")
        self.describe_button.setToolTip("Load the selected model and list its architecture facts")
        self.describe_button.clicked.connect(self._describe)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.empty.setObjectName("hint")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.empty)
        lay.addWidget(self.tree, 2)
        lay.addWidget(self.describe_button)
        lay.addWidget(self.facts, 1)
        self.empty.setText("Looking for models…")
        for box in self.pickers.values():
            box.setEnabled(False)
        self._show_entry(None)

    # ------------------------------------------------------------------------------ public
    @staticmethod
    def scan(extra: list[str] = ()) -> list[ModelEntry]:
        """Every model of the library folders plus ``extra`` files (reads headers only; any thread)."""
        entries = catalog()
        known = {e.path for e in entries}
        for p in extra:
            path = Path(p)
            if path.is_file() and path not in known:
                entries.append(classify(model_name(path), path))
        return entries

    def refresh(self, prefer: dict[str, str] | None = None) -> None:
        """Re-scan the model folders here on the calling thread (tests; the window scans on a worker)."""
        self.set_entries(self.scan([str(e.path) for e in self.extra]), prefer)

    def set_entries(self, entries: list[ModelEntry], prefer: dict[str, str] | None = None) -> None:
        """Show ``entries``; keep (or set from ``prefer``) the chosen models by name."""
        keep = {r: self.current_name(r) for r in ROLES}
        keep.update({k: v for k, v in (prefer or {}).items() if v})
        self.entries = [self.identified.get(e.path, e) for e in entries]
        self._identify_unknown()
        self.tree.clear()
        for kind, title in GROUPS:
            items = [e for e in self.entries if e.kind == kind]
            if not items:
                continue
            top = QTreeWidgetItem([f"{title} ({len(items)})", ""])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            for e in items:
                it = QTreeWidgetItem([e.name, _size(e.size_mb)])
                it.setData(0, Qt.ItemDataRole.UserRole, e)
                it.setToolTip(0, str(e.path))
                top.addChild(it)
            top.setExpanded(True)
        for role, box in self.pickers.items():
            box.blockSignals(True)
            box.clear()
            choices = of_kind(self.entries, role)
            box.addItem("(none)" if choices else f"(no {role} found)", None)
            for e in choices:
                box.addItem(e.name, e)
            idx = box.findText(keep.get(role) or "")
            box.setCurrentIndex(idx if idx >= 0 else (1 if len(choices) else 0))
            box.setEnabled(bool(choices))
            box.blockSignals(False)
        self._mark_chosen()
        dirs = " · ".join(str(d) for d in model_dirs() if d.is_dir()) or str(user_models_dir())
        if self.entries:
            self.empty.setText(f"Models are read from: {dirs}")
        else:
            self.empty.setText("No models found. Put .safetensors, .pkl, .pt or .pth files in "
                               f"{user_models_dir()} (or set GANEDITOR_MODELS) and choose File ▸ Rescan models.")
        for role in ROLES:
            self.selection_changed.emit(role, self.current(role))

    def _identify_unknown(self) -> None:
        """Load the files the header did not place (e.g. .pth only spandrel knows) in the background,
        then show them under their kind."""
        todo = [e for e in self.entries if e.kind == "unknown" and e.path not in self.identified]
        if not todo:
            return

        def found(entries: list[ModelEntry]) -> None:
            self.identified.update({e.path: e for e in entries})
            self.set_entries(self.entries)

        self.lane.submit(Job(lambda task: [identify(e) for e in todo], key="identify", label="Identifying models",
                             on_result=found, cancellable=False))

    def add_entry(self, e: ModelEntry) -> None:
        """Add a (checked) model file from anywhere and select it in its role."""
        self.extra = [x for x in self.extra if x.path != e.path] + [e]
        entries = [x for x in self.entries if x.path != e.path] + [e]
        self.set_entries(entries, prefer={e.kind: e.name} if e.kind in ROLES else None)

    def current(self, role: str) -> ModelEntry | None:
        return self.pickers[role].currentData()

    def current_name(self, role: str) -> str:
        e = self.current(role)
        return e.name if e else ""

    def select(self, role: str, name: str, quiet: bool = False) -> bool:
        """Choose the model ``name`` for ``role`` ('' = none); ``quiet``: without emitting selection_changed."""
        box = self.pickers[role]
        idx = box.findText(name) if name else 0
        if idx >= 0:
            box.blockSignals(quiet)
            box.setCurrentIndex(idx)
            box.blockSignals(False)
            self._mark_chosen()
        return idx >= 0

    # ---------------------------------------------------------------------------- internal
    def _picked(self, role: str) -> None:
        self._mark_chosen()
        self.selection_changed.emit(role, self.current(role))

    def _mark_chosen(self) -> None:
        """Chosen models in bold in the tree."""
        chosen = {e.path for e in (self.current(r) for r in ROLES) if e is not None}
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                it = top.child(j)
                f = it.font(0)
                f.setBold(it.data(0, Qt.ItemDataRole.UserRole).path in chosen)
                it.setFont(0, f)

    def _show_entry(self, item: QTreeWidgetItem | None) -> None:
        e = item.data(0, Qt.ItemDataRole.UserRole) if item else None
        self.describe_button.setEnabled(e is not None and e.kind not in ("directions",))
        if e is None:
            self.facts.setHtml("<p style='color:#888'>Select a model to see what it is.</p>")
            return
        rows = [("File", str(e.path)), ("Kind", e.kind), ("Architecture", e.arch or "—")]
        if e.roles:
            rows.append(("Networks", ", ".join(e.roles)))
        for k in ("recipe", "data", "scale", "stage", "degradation", "images_seen"):
            if k in e.meta:
                rows.append((k.replace("_", " ").capitalize(), format_fact(e.meta[k])))
        if e.kind == "directions":
            names = [d.get("name", "") for d in e.meta.get("directions", [])]
            rows.append(("Directions", f"{len(names)}: " + ", ".join(names[:16]) + (" …" if len(names) > 16 else "")))
        self.facts.setHtml(_table(rows))

    def _describe(self) -> None:
        item = self.tree.currentItem()
        e = item.data(0, Qt.ItemDataRole.UserRole) if item else None
        if e is None:
            return
        self.facts.setHtml(f"<p>Loading {html.escape(e.name)}…</p>")

        def shown(facts: CheckpointFacts) -> None:
            rows = [("Format", facts.format)]
            for role, f in facts.networks.items():
                rows.append((f"<b>{html.escape(role)}</b>", ""))
                rows += [(k.replace("_", " "), format_fact(v)) for k, v in f.items()]
            self.facts.setHtml(_table(rows, escape_keys=False))

        self.lane.submit(Job(lambda task: describe(e.path), key="describe", label=f"Loading {e.name}",
                             cancellable=False, on_result=shown, on_error=lambda exc: self.facts.setHtml(
                                 f"<p style='color:#c0392b'>{html.escape(str(exc))}</p>")))  # fmt: skip


def _table(rows: list[tuple[str, str]], escape_keys: bool = True) -> str:
    out = ["<table cellspacing='0' cellpadding='2'>"]
    for k, v in rows:
        key = html.escape(k) if escape_keys else k
        out.append(f"<tr><td style='color:#7f8c8d; padding-right:10px' valign='top'>{key}</td>"
                   f"<td>{html.escape(v)}</td></tr>")  # fmt: skip
    out.append("</table>")
    return "".join(out)


def _size(mb: float) -> str:
    return f"{mb:.1f} MB" if mb >= 1 else f"{mb * 1000:.0f} kB"
