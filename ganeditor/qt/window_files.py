"""The main window's file handling: open photos and projects, save, export, drop, autosave, recovery,
and the questions asked before work could be lost.  Decoding and encoding run on the I/O lane, so
the GUI thread only swaps arrays in."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QFileDialog, QMessageBox

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import LoadedImage, read_image
from ganeditor.core.model_store import MODEL_SUFFIXES
from ganeditor.pipelines.project import (SUFFIX, PhotoRef, Project, file_sha256, load_project, photo_bytes_if_small,
                                         save_project)
from ganeditor.qt.autosave import orphans
from ganeditor.qt.document import export_image
from ganeditor.qt.jobs import Job
from ganeditor.qt.settings import Key

IMAGE_FILTER = "Images and projects (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif *.ganedit);;All files (*)"
PROJECT_FILTER = "GAN Editor projects (*.ganedit)"
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif *.tiff);;WebP (*.webp)"
Answer = QMessageBox.StandardButton


def read_project(path: str | Path) -> tuple[Project, LoadedImage | None]:
    """(project, its original photo or None when neither embedded nor at its path); worker thread."""
    pr = load_project(path)
    if pr.photo.data is not None:
        with tempfile.TemporaryDirectory(prefix="ganedit-") as tmp:
            p = Path(tmp) / ("photo" + Path(pr.photo.path).suffix.lower())
            p.write_bytes(pr.photo.data)
            return pr, read_image(p)
    path_ok = bool(pr.photo.path) and Path(pr.photo.path).is_file()
    if not path_ok or (pr.photo.sha256 and file_sha256(pr.photo.path) != pr.photo.sha256):
        return pr, None  # moved, or another file now has its name: the window asks for it
    try:
        return pr, read_image(pr.photo.path)
    except GanEditorError:
        return pr, None


def write_project(path: str | Path, project: Project, embed_photo: bool) -> None:
    """Save ``project``, embedding the photo's bytes when asked and small enough; worker thread."""
    ref = project.photo
    if embed_photo and ref.data is None and ref.path:
        project = replace(project, photo=replace(ref, data=photo_bytes_if_small(ref.path)))
    save_project(path, project)


class FileActions:
    """Mixed into MainWindow (uses its doc, lanes, settings, portrait panel, models panel)."""

    # ------------------------------------------------------------------------------ asking
    def ask(self, title: str, text: str, buttons: Answer, default: Answer) -> Answer:
        """A question box (tests replace this method).  Headless, nothing is asked: the answer that
        changes nothing (Cancel, No or Ignore) is taken and the question goes to stderr."""
        if self.headless:
            answer = next((b for b in (Answer.Cancel, Answer.No, Answer.Ignore) if buttons & b), default)
            print(f"{title}: {text} (not asked, nobody is there: {answer.name})", file=sys.stderr, flush=True)
            return answer
        box = QMessageBox(QMessageBox.Icon.Question, title, text, buttons, self)
        box.setDefaultButton(default)
        if buttons & Answer.Discard:  # the platform's label may be "Close without Saving", also before an Open
            box.button(Answer.Discard).setText("Don't Save" if buttons & Answer.Save else "Discard")
        if box.exec() == -1:  # as QMessageBox.question answers
            return Answer.Cancel
        return box.standardButton(box.clickedButton())

    def confirm_discard(self, action: str) -> bool:
        """Before ``action`` replaces the document: offer to apply a slider edit that is shown but not
        applied, then to save unsaved work. True: go ahead."""
        if self._discard:
            return True
        if not self._confirm_unapplied(action):
            return False
        if not self.doc.is_modified:
            return True
        name = self.doc.project_path.name if self.doc.project_path else (self.doc.path.name if self.doc.path else "the photo")
        a = self.ask("Unsaved changes", f"Save the changes to {name} before you {action}?",
                     Answer.Save | Answer.Discard | Answer.Cancel, Answer.Save)
        if a == Answer.Cancel:
            return False
        if a == Answer.Save:
            return self.save_project(wait=True)
        return True

    def _confirm_unapplied(self, action: str) -> bool:
        """The Portrait panel's edit that is not applied: Apply (then go on), Discard (go on without it) or
        Cancel (keep everything). True: go ahead."""
        edit = self.portrait.unapplied_edit()
        if not edit:
            return True
        n, it = len(edit), "them" if len(edit) > 1 else "it"
        what = f"{n} slider edit{'s are' if n > 1 else ' is'} not applied ({self.portrait.describe_edit(edit)})"
        a = self.ask("Edit not applied", f"{what}. Apply {it} before you {action}?",
                     Answer.Apply | Answer.Discard | Answer.Cancel, Answer.Apply)
        if a == Answer.Cancel:
            return False
        if a == Answer.Apply:
            self.statusBar().showMessage(f"Applying the edit before you {action}…")
            if not self.portrait.apply_now(self.wait_for):
                self.show_error("Edit not applied", f"The edit could not be applied, so GAN Editor did not {action}: "
                                "nothing was lost.")
                return False
        return True

    # -------------------------------------------------------------------------------- open
    def open_path(self, path: str, remember: bool = True, ask: bool = True) -> bool:
        """Open a photo or a ``.ganedit`` project (decoded on the I/O lane); False if refused at once."""
        if ask and not self.confirm_discard("open another file"):
            return False
        if Path(path).suffix.lower() == SUFFIX:
            self._run_io(lambda task: read_project(path), lambda r: self._project_loaded(*r, path, remember),
                         f"Opening {Path(path).name}", "Cannot open project")
        else:
            self._run_io(lambda task: (read_image(path), file_sha256(path)),
                         lambda r: self._photo_loaded(*r, path, remember), f"Opening {Path(path).name}", "Cannot open")
        return True

    def open_image(self, path: str, remember: bool = True) -> bool:
        """Open a photo (kept for callers that think in photos)."""
        return self.open_path(path, remember)

    def _run_io(self, fn: Callable, on_result: Callable, label: str, error_title: str) -> Job:
        return self.io_lane.submit(Job(fn, key="open", label=label, on_result=on_result,
                                       on_error=lambda e: self.show_error(error_title, str(e))))  # fmt: skip

    def _photo_loaded(self, img: LoadedImage, sha256: str, path: str, remember: bool) -> None:
        self.doc.set_source(img, path, sha256=sha256)
        if remember:
            self._remember(path)
        w, h = img.size
        extra = f", {img.bit_depth}-bit" if img.bit_depth != 8 else ""
        notes = f" — {'; '.join(img.notes)}" if img.notes else ""
        self.statusBar().showMessage(f"{Path(path).name} — {w}×{h}{extra}{notes}")
        self._update_title()

    def _project_loaded(self, pr: Project, photo: LoadedImage | None, path: str | None, remember: bool,
                        recovered: bool = False) -> None:
        self.doc.set_source(photo or pr.result, pr.photo.path if photo else None, current=pr.result,
                            project_path=None if recovered else path, sha256=pr.photo.sha256,
                            operations=pr.operations)  # fmt: skip
        problem = self.portrait.restore(pr.portrait) if pr.portrait is not None else ""
        if recovered:
            self.doc.mark_modified()
        if remember and path:
            self._remember(path)
        ops = len(pr.operations)
        self.statusBar().showMessage(f"{'Recovered' if recovered else 'Opened'} {Path(path or 'project').name}: "
                                     f"{ops} operation{'s' if ops != 1 else ''}", 10000)  # fmt: skip
        self._update_title()
        if photo is None and not self._discard:
            self._locate_photo(pr.photo)
        if problem:
            self.show_error("Project", problem)

    def _locate_photo(self, ref: PhotoRef) -> None:
        """The project's photo has moved: ask for it (the rest of the project is already open)."""
        a = self.ask("Photo moved", f"The project's original photo {ref.path} was not found. Locate it? "
                     "(Without it, the result is shown and compare shows the result too.)", Answer.Yes | Answer.No, Answer.Yes)  # fmt: skip
        if a != Answer.Yes:
            return
        found, _ = QFileDialog.getOpenFileName(self, f"Locate {Path(ref.path).name}", "", IMAGE_FILTER)
        if found:
            self._run_io(lambda task: read_image(found), lambda img: self.doc.set_original(img, found),
                         f"Opening {Path(found).name}", "Cannot open")

    def _remember(self, path: str) -> None:
        self.settings.add_recent(str(Path(path).resolve()))
        self.settings.set(Key.LAST_DIR, str(Path(path).resolve().parent))
        self._update_recent()

    def _open_dialog(self) -> None:
        if not self.confirm_discard("open another file"):
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open photo or project", self.settings.get(Key.LAST_DIR), IMAGE_FILTER)
        if path:
            self.open_path(path, ask=False)

    # -------------------------------------------------------------------------------- save
    def gather_project(self) -> Project | None:
        """The open document as a Project (GUI thread: references only, no encoding)."""
        d = self.doc
        if not d.is_open:
            return None
        ref = PhotoRef(str(d.path.resolve()) if d.path else "", d.sha256, d.source.size)
        return Project(ref, d.as_loaded(), d.operations(), self.portrait.project_state())

    def save_project(self, path: str | None = None, wait: bool = False) -> bool:
        """Save to ``path`` (default: the project's file, else ask); ``wait``: block until written."""
        path = path or (str(self.doc.project_path) if self.doc.project_path else None)
        if path is None:
            return self.save_project_as(wait)
        project = self.gather_project()
        if project is None:
            return False
        revision, result = self.doc.revision, {}

        def done(_r) -> None:
            result["ok"] = True
            if self.doc.revision == revision:
                self.doc.mark_saved(path)
            else:  # edited meanwhile: saved, but not everything
                self.doc.project_path = Path(path)
            self.autosaver.discard()
            self._remember(path)
            self._update_title()
            self.statusBar().showMessage(f"Saved {Path(path).name}", 6000)

        def failed(e: BaseException) -> None:
            result["ok"] = False
            self.show_error("Cannot save", str(e))

        embed = self.settings.get(Key.EMBED_PHOTO)
        job = self.io_lane.submit(Job(lambda task: write_project(path, project, embed), key="save", label=f"Saving {Path(path).name}",
                                      on_result=done, on_error=failed))  # fmt: skip
        if wait:
            self.wait_for(lambda: job.state == "done" and "ok" in result)
        return result.get("ok", True) if wait else True

    def save_project_as(self, wait: bool = False) -> bool:
        if not self.doc.is_open:
            return False
        start = self.doc.project_path or (self.doc.path.with_suffix(SUFFIX) if self.doc.path else Path("untitled" + SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(start), PROJECT_FILTER)
        if not path:
            return False
        if not path.endswith(SUFFIX):
            path += SUFFIX
        return self.save_project(path, wait)

    # ------------------------------------------------------------------------------ export
    def _export_dialog(self) -> None:
        if not self.doc.is_open:
            return
        start = str(self.doc.path.with_name(self.doc.path.stem + "-edited.png")) if self.doc.path else ""
        path, _ = QFileDialog.getSaveFileName(self, "Export result", start, EXPORT_FILTER)
        if path:
            self.export(path)

    def export(self, path: str) -> Job | None:
        """Write the current result atomically on the I/O lane (ICC, EXIF and bit depth kept where the format can)."""
        if not self.doc.is_open:
            return None
        image, ops, source = self.doc.as_loaded(), self.doc.operations(), self.doc.path
        options = self.settings.provenance_options()

        def done(notes: list[str]) -> None:
            self.statusBar().showMessage(f"Exported {Path(path).name}" + (f" ({'; '.join(notes)})" if notes else ""), 8000)

        return self.io_lane.submit(Job(lambda task: export_image(image, path, operations=ops, source=source, options=options), key=f"export:{path}",
                                       label=f"Exporting {Path(path).name}", on_result=done,
                                       on_error=lambda e: self.show_error("Cannot export", str(e))))  # fmt: skip

    # -------------------------------------------------------------------------------- drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if not urls:
            return
        path = urls[0].toLocalFile()
        if Path(path).suffix.lower() in MODEL_SUFFIXES:
            self.add_model(path)
        else:
            self.open_path(path)

    # ---------------------------------------------------------------------------- recovery
    def offer_recovery(self) -> bool:
        """At start-up: offer the newest autosave a crashed session left; True when one is being recovered."""
        found = orphans(self.autosaver.folder)
        if not found:
            return False
        newest = found[0]
        a = self.ask("Recover unsaved work", "GAN Editor did not close normally last time. Recover the work that was "
                     f"autosaved ({newest.name})?", Answer.Yes | Answer.Discard | Answer.Ignore, Answer.Yes)  # fmt: skip
        if a == Answer.Ignore:  # keep the files for another time
            return False
        if a == Answer.Discard:
            for p in found:
                p.unlink(missing_ok=True)
            return False

        def recovered(r: tuple[Project, LoadedImage | None]) -> None:
            self._project_loaded(*r, None, remember=False, recovered=True)
            newest.unlink(missing_ok=True)
            self.autosaver.save_now()

        self._run_io(lambda task: read_project(newest), recovered, "Recovering", "Cannot recover")
        return True
