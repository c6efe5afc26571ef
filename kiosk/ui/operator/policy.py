"""Policy page: the decision rules and thresholds (``[policy]``) and the community (``[community]``).

The rows come from the config dataclasses with their documented rules, so a new policy key appears
here by itself (with its key as the label until it gets a Chinese one below).
"""

from __future__ import annotations

from typing import Any, Optional

from PyQt5.QtWidgets import QPushButton, QVBoxLayout, QWidget

from kiosk.ui.operator.widgets import ConfigForm, Note, Page, heading, hint, save_forms

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


class PolicyPage(Page):
    name = "policy"
    title = "规则 Policy"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.form = ConfigForm("policy", labels=POLICY_LABELS)
        self.community = ConfigForm("community", labels=COMMUNITY_LABELS)
        self.note = Note()
        self.save_button = QPushButton("保存并应用 Save")
        self.save_button.setProperty("accent", True)
        self.save_button.clicked.connect(self.save)
        self.undo_button = QPushButton("放弃修改 Revert")
        self.undo_button.clicked.connect(self.load)

        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(heading("通行规则 Decision rules"))
        column.addWidget(hint("修改立即生效，无需重启 Changes apply at once, no restart."))
        column.addWidget(self.form)
        column.addWidget(heading("小区 Community"))
        column.addWidget(self.community)
        column.addStretch(1)

        self.lay_out(body, self.note, self.undo_button, self.save_button)
        self.load()

    def load(self) -> None:
        self.form.load(self.ctx.config)
        self.community.load(self.ctx.config)
        if self.ctx.load_problem:
            self.note.error("配置文件有误，显示默认值 The config file is invalid; showing defaults: {}".format(
                self.ctx.load_problem))
        else:
            self.note.busy("")

    def on_show(self) -> None:
        self.load()

    def save(self) -> bool:
        return save_forms(self.ctx, [self.form, self.community], note=self.note)
