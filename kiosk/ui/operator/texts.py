"""What each setting means, in the operator's words (Chinese first). The config's own documentation
(English, for engineers and ``config.toml``) stays the second line; raw keys never show on screen."""

from __future__ import annotations

from typing import Dict, Tuple

ZH_DOCS: Dict[str, str] = {
    # policy
    "policy.mask_required": "未戴口罩不开门",
    "policy.incorrect_counts_as_unmasked": "口罩没遮住鼻子，按未戴口罩处理",
    "policy.request_required": "必须先说「你好大白，请让我进入小区」才开门",
    "policy.pass_required": "必须出示有效的通行证二维码",
    "policy.engaged_timeout_s": "一位访客这么久还没有结果，就停止服务",
    "policy.left_after_s": "人离开画面这么久，算作已离开",
    "policy.result_hold_s": "“通过 / 未通过”画面显示的时长",
    "policy.cooldown_s": "出结果后这段时间内不再受理，等下一位",
    "policy.next_person_after_s": "出结果这么久后换了一个人，立即为新来的人服务",
    "policy.vote_window": "按最近多少帧判断口罩状态",
    "policy.vote_min": "其中至少多少帧一致才采信",
    "policy.min_confidence": "低于此把握的口罩判断不计入",
    "policy.adjust_prompt_every_s": "口罩可能没戴好时，最多每隔多久提醒一次“请调整口罩”",
    "policy.repeat_denial_log_s": "同一人因同一原因再次被拒，这段时间内只记录一次",
    "policy.min_face_px": "比这更小的人脸视为路过的行人，不受理",
    # community
    "community.name": "小区名称，印在通行证上",
    "community.pass_days": "新签发通行证的有效天数",
    "community.export_dir": "保存通行证和导出记录的文件夹（U 盘总会列出；留空则用本机导出文件夹）",
    # camera, microphone, speaker
    "camera.source": "使用哪个摄像头（点“查找设备”从列表中选择）",
    "camera.width": "画面宽度（像素）",
    "camera.height": "画面高度（像素）",
    "camera.fps": "每秒帧数",
    "camera.loop": "视频文件播完后从头播放（演示用）",
    "camera.flip": "摄像头侧装或倒装时把画面转正",
    "listen.source": "使用哪个麦克风",
    "speech.output": "使用哪个扬声器",
    "speech.tts": "语音引擎（auto：自动选择已安装的最佳声音）",
    # gate
    "gate.driver": "闸机继电器的接法：模拟、GPIO 引脚、USB 串口继电器或 RS485 Modbus 继电器板",
    "gate.pulse_ms": "每次开闸时继电器吸合多久",
    "gate.gpio_pin": "继电器接在 40 针排针的哪个引脚（BOARD 编号）",
    "gate.active_low": "继电器板低电平触发时勾选",
    "gate.modbus_address": "Modbus 继电器板的站地址",
    "gate.modbus_coil": "开闸用的线圈编号",
    "gate.wiegand": "开门时同时向门禁控制器发送韦根信号",
    "gate.serial_port": "USB 串口继电器所在的端口",
    "gate.serial_open_hex": "让串口继电器吸合的指令（十六进制）",
    "gate.serial_close_hex": "让串口继电器断开的指令（十六进制）",
    "gate.modbus_baud": "RS485 通信波特率",
    "gate.modbus_parity": "RS485 校验位",
    "gate.modbus_stop_bits": "RS485 停止位",
    "gate.modbus_timeout_ms": "等待继电器板应答的最长时间",
    "gate.wiegand_d0_pin": "韦根 D0 线接的引脚",
    "gate.wiegand_d1_pin": "韦根 D1 线接的引脚",
    "gate.wiegand_inverted": "韦根线路经反相电路时勾选",
    "gate.wiegand_facility": "韦根信号中的场地码",
    "gate.wiegand_pulse_us": "韦根脉冲宽度（微秒）",
    "gate.wiegand_interval_us": "韦根脉冲间隔（微秒）",
    "gate.guardian": "由独立的守护进程控制继电器，程序卡死时也能确保闸门关闭",
    "gate.max_pulse_ms": "守护进程允许的最长开闸时间",
    "gate.guardian_timeout_s": "守护进程多久收不到程序心跳就关闸",
}

# Names for settings whose page gives none (a page's own labels come first).
ZH_LABELS: Dict[str, str] = {
    "gate.modbus_baud": "波特率",
    "gate.modbus_parity": "校验位",
    "gate.modbus_stop_bits": "停止位",
    "gate.modbus_timeout_ms": "应答超时（毫秒）",
    "gate.wiegand_d0_pin": "韦根 D0 引脚",
    "gate.wiegand_d1_pin": "韦根 D1 引脚",
    "gate.wiegand_inverted": "韦根信号反相",
    "gate.wiegand_facility": "韦根场地码",
    "gate.wiegand_pulse_us": "韦根脉宽（微秒）",
    "gate.wiegand_interval_us": "韦根间隔（微秒）",
    "gate.guardian": "闸机守护进程",
    "gate.max_pulse_ms": "最长开闸（毫秒）",
    "gate.guardian_timeout_s": "守护超时（秒）",
    "policy.next_person_after_s": "换人立即服务（秒）",
    "community.export_dir": "导出文件夹",
}


def zh_label(section: str, key: str) -> str:
    """A Chinese name for ``section.key``; empty when there is none yet."""
    return ZH_LABELS.get("{}.{}".format(section, key), "")


def zh_doc(section: str, key: str) -> str:
    """The Chinese explanation of ``section.key``; empty when there is none yet."""
    return ZH_DOCS.get("{}.{}".format(section, key), "")


# ---- a kiosk kept in step by the property office ------------------------------------------------
# On a kiosk of a fleet that holds the office's policy or its residents and passes (kiosk.fleet.documents), the page
# says so at the top, with the version this kiosk holds: Chinese first, English second.

OFFICE_POLICY_NOTE = (
    "本机的通行规则由物业办公室统一下发（第 {version} 版）。在此修改会在办公室下次更新时被覆盖；请在物业办公室修改。",
    "The property office sets these rules (version {version}): change them there. "
    "The community settings below are this kiosk's own.",
)
OFFICE_REGISTRY_NOTE = (
    "本机的住户和通行证由物业办公室统一管理（第 {version} 版）。在此修改会在办公室下次更新时被替换；请在物业办公室办理。",
    "Residents and passes come from the property office (version {version}): change them there. "
    "Here they can be looked up.",
)
OFFICE_REGISTRY_REFUSED = "未修改：住户和通行证由物业办公室管理，请在办公室办理 Not changed: the property office keeps " \
                          "residents and passes"
OFFICE_POLICY_SAVE = "保存小区设置 Save community"  # the save button where only [community] is this kiosk's own


def office_note(note: Tuple[str, str], version: int) -> Tuple[str, str]:
    """One of the notes above with the version held filled in: (Chinese, English)."""
    return note[0].format(version=version), note[1].format(version=version)
