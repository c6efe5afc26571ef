"""Policy page: the decision rules and thresholds (``[policy]``) and the community (``[community]``).

The rows come from the config dataclasses with their documented rules, so a new policy key appears
here by itself (with its key as the label until it gets a Chinese one below).

On a kiosk of a fleet that holds the property office's policy (:func:`~kiosk.ui.operator.widgets.office_versions`,
read each time the page is shown), ``[policy]`` is the office's: the office overwrites it at its next change. The
page then says so at the top and shows the rules read-only; the community settings stay this kiosk's own.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Tuple

from PyQt5.QtWidgets import QPushButton, QVBoxLayout, QWidget

from kiosk.config import Config, ConfigError, FleetConfig, Home, load_config
from kiosk.ui.operator.texts import OFFICE_POLICY_NOTE, OFFICE_POLICY_SAVE, office_note
from kiosk.ui.operator.widgets import (
    ConfigForm,
    Note,
    OneAtATime,
    Page,
    heading,
    hint,
    office_note_label,
    office_versions,
    save_forms,
    show_office_note,
)

log = logging.getLogger(__name__)

POLICY_LABELS = {
    "mask_required": "必须佩戴口罩",
    "incorrect_counts_as_unmasked": "未遮住口鼻视为未戴",
    "request_required": "必须说出请求",
    "pass_required": "必须出示通行证",
    "engaged_timeout_s": "服务超时（秒）",
    "left_after_s": "离开判定（秒）",
    "result_hold_s": "结果显示时长（秒）",
    "cooldown_s": "冷却时间（秒）",
    "vote_window": "口罩投票窗口（帧）",
    "vote_min": "投票最少一致帧数",
    "min_confidence": "最低置信度",
    "adjust_prompt_every_s": "提示调整口罩间隔（秒）",
    "repeat_denial_log_s": "重复拒绝只记一次（秒）",
    "min_face_px": "最小人脸高度（像素）",
}

COMMUNITY_LABELS = {
    "name": "小区名称",
    "pass_days": "通行证有效天数",
}
SAVE_TEXT = "保存并应用 Save"
# The rules shown read-only: their values stay dark enough to read (the disabled grey is for what is unavailable).
LOCKED_STYLE = "QLineEdit:disabled, QComboBox:disabled, QCheckBox:disabled { color: #3c434a; }"


def read_office_policy(home: Home, fleet: FleetConfig) -> Tuple[int, Optional[Config]]:
    """(the office's policy version this kiosk holds, its config as on disk now) on a worker thread; (0, None) where
    the rules are this kiosk's own. The config is None when it cannot be read (the page shows what it has)."""
    version = office_versions(home, fleet).get("policy", 0)
    if not version:
        return 0, None
    try:
        return version, load_config(home.config)
    except ConfigError:
        return version, None


class PolicyPage(Page):
    name = "policy"
    title = "规则 Policy"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.form = ConfigForm("policy", labels=POLICY_LABELS)
        self.community = ConfigForm("community", labels=COMMUNITY_LABELS)
        self.note = Note()
        self.save_button = QPushButton(SAVE_TEXT)
        self.save_button.setProperty("accent", True)
        self.save_button.clicked.connect(self.save)
        self.undo_button = QPushButton("放弃修改 Revert")
        self.undo_button.clicked.connect(self.load)
        self.office_note = office_note_label()
        self.office_version = 0  # the office's policy version this kiosk holds (0: the rules are its own)
        self.office_config: Optional[Config] = None  # the config as on disk when the office's version was read
        self.office_checked = False  # whether a read of the version has answered yet
        self._office_reads = OneAtATime()

        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(heading("通行规则 Decision rules"))
        self.rules_hint = hint("修改立即生效，无需重启 Changes apply at once, no restart.")
        column.addWidget(self.rules_hint)
        column.addWidget(self.form)
        column.addWidget(heading("小区 Community"))
        column.addWidget(self.community)
        column.addStretch(1)

        self.lay_out(body, self.note, self.undo_button, self.save_button)
        self.layout().insertWidget(0, self.office_note)  # above the rules, whichever way they are scrolled
        self.load()

    def load(self) -> None:
        office = self.office_config if self.office_version else None
        self.form.load(office if office is not None else self.ctx.config)
        self.community.load(self.ctx.config)
        if self.ctx.load_problem:
            self.note.error("配置文件有误，显示默认值 The config file is invalid; showing defaults: {}".format(
                self.ctx.load_problem))
        else:
            self.note.busy("")

    def on_show(self) -> None:
        self.load()
        self.check_office()

    # the office's policy

    def check_office(self) -> None:
        """Read whether the office keeps this kiosk's rules on a worker thread (one read at a time)."""
        home, fleet = self.ctx.home, self.ctx.config.fleet
        self._office_reads.run(lambda: read_office_policy(home, fleet), self._office_read)

    def _office_read(self, result: Optional[Tuple[int, Optional[Config]]], error: Optional[BaseException]) -> None:
        if error is not None or result is None:  # the page keeps what it showed
            log.warning("policy page: cannot tell whether the office keeps the rules: %s", error)
            return
        self.show_office(*result)

    def show_office(self, version: int, config: Optional[Config] = None) -> None:
        """The rules are the office's (``version`` > 0, with the config as on disk): the note, and the rules
        read-only; 0: this kiosk's own, the page as on a kiosk on its own."""
        self.office_checked = True
        was, self.office_version = self.office_version, version
        self.office_config = config if version else None
        locked = bool(version)
        show_office_note(self.office_note, office_note(OFFICE_POLICY_NOTE, version) if locked else None)
        if locked != bool(was):  # a kiosk on its own never gets here: its page stays exactly as it was made
            self.rules_hint.setVisible(not locked)
            for widget in self.form.inputs.values():
                widget.setEnabled(not locked)
            self.form.setStyleSheet(LOCKED_STYLE if locked else "")
            self.save_button.setText(OFFICE_POLICY_SAVE if locked else SAVE_TEXT)
        if locked:  # the office's values, as on disk now (it may have changed them since the screen opened)
            self.form.load(config if config is not None else self.ctx.config)

    def save(self) -> bool:
        """Save and apply the page; where the office keeps the rules, only the community settings."""
        forms = [self.community] if self.office_version else [self.form, self.community]
        return save_forms(self.ctx, forms, note=self.note)
