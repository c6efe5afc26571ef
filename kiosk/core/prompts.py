"""Every Mandarin sentence the kiosk says or shows, in one table.

Keys are stable: the TTS cache, the UI and the access log refer to prompts by key.
"""

from __future__ import annotations

from typing import Dict

PROMPTS: Dict[str, str] = {
    # engagement
    "welcome": "你好，我是大白。请出示通行二维码",
    "show_pass": "请出示通行二维码",
    "say_request": "请说：你好大白，请让我进入小区",
    "help": "如需帮助，请联系物业",
    # the mask looks off but the model is not sure: not a denial, the kiosk keeps looking
    "adjust_mask": "请调整口罩，戴好后稍等",
    # granted
    "granted": "您好，{name}，欢迎回家，二维码有效请您通过",
    "granted_anonymous": "您好，欢迎回家，请您通过",
    # denied: mask
    "no_mask": "请您佩戴口罩",
    "mask_incorrect": "请正确佩戴口罩，遮住口鼻",
    # denied: pass (keys equal the pass verification reasons)
    "malformed": "二维码无效",
    "bad_signature": "二维码无效",
    "wrong_community": "二维码不属于本小区",
    "expired": "二维码已过期",
    "not_yet_valid": "二维码尚未生效",
    "revocations_unsure": "系统暂不可用，请联系物业",
    "pass_revoked": "二维码已注销，请联系物业",
    "unknown_pass": "二维码未登记，请联系物业",
    "unknown_resident": "未登记住户，请联系物业",
    "resident_revoked": "住户已停用，请联系物业",
    # other outcomes
    "timeout": "操作超时，请重新开始",
    "gate_fault": "闸机故障，请联系物业",
}


def prompt(key: str, **fields: str) -> str:
    """The sentence for ``key`` with its fields filled in (e.g. the resident's name)."""
    return PROMPTS[key].format(**fields)
