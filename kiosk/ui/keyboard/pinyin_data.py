"""Builds the pinyin table of the on-screen keyboard from pypinyin's dictionaries.

Run once by ``tools/make_pinyin_table.py``, which writes ``pinyin_table.txt`` next to this file; the kiosk
then only reads that small file (:mod:`kiosk.ui.keyboard.pinyin`). Scanning pypinyin's two big
dictionaries takes about a second, too slow for every start of the kiosk. If the table file is missing
(an install that left the data file out), :mod:`kiosk.ui.keyboard.pinyin` builds the same table here in
memory instead.

Data: pypinyin (MIT License, Copyright (c) 2016 mozillazg, 闲耘) — ``pinyin_dict`` (code point → readings)
and ``phrases_dict`` (phrase → readings). pypinyin has no frequency data, so the ranking is made of:

* how often a character occurs in ``phrases_dict`` with a reading (a rough usage proxy),
* the GB2312 level (level 1 holds the 3755 most common characters),
* ``FREQUENT``: a short hand-written list of the most frequent characters of modern Chinese (function
  words such as 的 是 这 hardly occur in the phrase dictionary, which lists polyphonic phrases),
* ``SURNAMES`` (the 100 most common surnames, most common first) and ``GIVEN`` (characters common in given
  names): the engine puts them first where a name is typed.

Table format (UTF-8 text, one record a line, fields separated by one space; ``#`` starts a comment)::

    R <all characters, most frequent first>       global order, used to merge syllables
    G <given-name characters>
    C <syllable> <characters, best first>           single characters of one toneless syllable (ü as v)
    N <syllable> <surname characters, most common first>
    W <syllable'syllable...> <word> <word> ...       words, best first
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Tuple

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# The surname reading where it is not the character's first reading in pypinyin (曾 céng/zēng, 覃 tán/qín).
SURNAME_READINGS = {"曾": "zeng", "覃": "qin", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "朴": "piao",
                    "查": "zha", "盖": "ge", "乐": "yue", "尉": "yu"}
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红文辉鹏斌宇浩凯健俊帆帅旭宁龙林欢佳阳建亮成婷雪琳晨倩颖慧"
    "琴云飞峰燕梅莉萍波海鑫新宏志国庆春晓晶欣怡子涵梓萱轩然博雨若一诗思嘉家彬东鸿翔丹婧瑶琪薇洁玲蕾莹楠豪威"
)
# Most frequent characters of modern Chinese text, most frequent first (hand-written, approximate).
FREQUENT = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种"
    "事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第"
    "公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合"
    "回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总"
    "何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听"
    "白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带"
    "导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连"
    "调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史"
    "委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半"
    "节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群"
    "项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独"
    "球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳"
    "欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮"
    "挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛"
    "托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湾"
    "吉减编楚肯测败屋跑梦散温困剑渐封救贵枪缺楼县尚毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽"
    "巨炮旧端探湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒烟授诺"
    "伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝"
    "翻暴森塔默握戏隐熟骨访弱蒙歌店鬼软典欲萨伙遭盘爸扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰虚玩析窗醒妻透购替塞努休虎"
    "扬途侵刑绿兄迅套贸毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针哲络抵朱埃抱鼓植纯夏忍页杰筑折郑贝尊吴秀混臣雅振"
    "染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩盟末乃悲拍丁赵尺纷抬聚"
)
# Words a gate operator types that pypinyin's phrase dictionary (polyphonic phrases only) lacks.
EXTRA_WORDS = (
    "先生 女士 小区 物业 业主 住户 租户 访客 来访 快递 外卖 单元 楼栋 号楼 门卫 保安 保洁 维修 装修 东门 西门 南门 北门 "
    "大门 侧门 车库 车位 房间 电话 手机 姓名 名字 地址 备注 临时 长期 过期 有效 无效 家人 老人 孩子 朋友 亲戚 父亲 母亲 "
    "爸爸 妈妈 爷爷 奶奶 儿子 女儿 丈夫 妻子 师傅 阿姨 叔叔 老师 同学 同事 你好 谢谢 欢迎 请进 小明 小红 小王 小李 小张 "
    "老王 老李 老张 管理 管理员 密码 设置 摄像头 口罩 二维码 门禁 通行 登记 开门 关门 今天 明天 昨天 上午 下午 晚上"
).split()

EXCLUDED_SYLLABLES = {"m", "n", "ng", "hm", "hng"}  # interjections (呣 嗯 哼): they break segmentation


def plain(reading: str) -> str:
    """A toned pinyin reading without tone marks, ü as v: ``lǚ`` → ``lv``, ``zhāng`` → ``zhang``."""
    text = unicodedata.normalize("NFD", reading.strip().lower()).replace("u\u0308", "v")
    return "".join(c for c in text if not unicodedata.combining(c))


def gb2312_level(ch: str) -> int:
    """1 or 2 for a GB2312 level-1 / level-2 hanzi, 0 for anything else (rare characters)."""
    try:
        code = ch.encode("gb2312")
    except UnicodeEncodeError:
        return 0
    if len(code) != 2 or code[0] < 0xB0:
        return 0
    return 1 if code[0] < 0xD8 else 2


def build_table() -> Dict[str, object]:
    """The table as plain data: ``{"order": str, "given": str, "chars": {syl: str}, "surnames": {syl: str},
    "words": {"syl'syl": [word, ...]}}``. Takes about a second (reads pypinyin's dictionaries)."""
    from pypinyin import Style, pinyin
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict

    total: Counter = Counter()  # character → occurrences in the phrase dictionary
    per_reading: Counter = Counter()  # (character, toneless reading) → occurrences
    for phrase, readings in phrases_dict.items():
        for ch, options in zip(phrase, readings):
            total[ch] += 1
            per_reading[(ch, plain(options[0]))] += 1
    frequent = {ch: rank for rank, ch in enumerate(dict.fromkeys(FREQUENT))}
    surname_rank = {ch: rank for rank, ch in enumerate(SURNAMES)}

    def boost(ch: str) -> float:  # FREQUENT's rank as a count: 3000 for 的, falling like a Zipf curve, 300 last
        if ch not in frequent:
            return 0.0
        return 300.0 + 2700.0 * (1.0 - math.log1p(frequent[ch]) / math.log1p(len(frequent)))

    def usage(ch: str) -> float:  # one number per character: the global order and the word ranking use it
        return boost(ch) + total[ch] + (30.0 if gb2312_level(ch) == 1 else 0.0)

    scored: Dict[str, List[Tuple[float, str]]] = defaultdict(list)
    surnames: Dict[str, List[str]] = defaultdict(list)
    kept = set()
    for code, readings in pinyin_dict.items():
        ch = chr(code)
        level = gb2312_level(ch)
        common = level == 1 or (level == 2 and total[ch] >= 3) or ch in frequent or ch in surname_rank
        if not common:
            continue
        syllables = list(dict.fromkeys(plain(r) for r in readings.split(",")))
        surname_syllable = SURNAME_READINGS.get(ch, syllables[0]) if ch in surname_rank else None
        for index, syl in enumerate(syllables):
            if syl in EXCLUDED_SYLLABLES or not syl.isalpha() or not syl.isascii():
                continue
            count = per_reading[(ch, syl)]
            main = index == 0 or count >= 0.25 * max(total[ch], 1)
            if not (main or count >= 1 or syl == surname_syllable):
                continue  # an odd reading nobody types (找 hua)
            score = count + (0.5 * total[ch] if index == 0 else 0.0) + (30.0 if level == 1 else 0.0)
            if main:
                score += boost(ch)
            if syl == surname_syllable:
                score += 100.0  # a surname's own reading ranks well even where no name is typed
                surnames[syl].append(ch)
            scored[syl].append((score, ch))
            kept.add(ch)

    chars = {syl: "".join(ch for _, ch in sorted(items, key=lambda item: (-item[0], item[1])))
             for syl, items in sorted(scored.items())}
    surname_lines = {syl: "".join(sorted(names, key=surname_rank.__getitem__)) for syl, names in sorted(surnames.items())}
    order = "".join(sorted(kept, key=lambda ch: (-usage(ch), ch)))

    # Words: the phrase dictionary's two- and three-character phrases (below), and EXTRA_WORDS (read by pypinyin
    # with its phrase rules). Ranked by their rarest character, then by the mean.
    def word_score(word: str) -> float:
        logs = [math.log1p(usage(ch)) for ch in word]
        return min(logs) + 0.3 * sum(logs) / len(logs)

    candidates: Dict[str, Tuple[str, float]] = {}
    for phrase, readings in phrases_dict.items():
        # two-character phrases of kept characters; three-character ones only of FREQUENT characters (size)
        if (len(phrase) == 2 and all(ch in kept for ch in phrase)) or (len(phrase) == 3 and all(ch in frequent for ch in phrase)):
            candidates[phrase] = ("'".join(plain(r[0]) for r in readings), word_score(phrase))
    for word in EXTRA_WORDS:
        key = "'".join(plain(r[0]) for r in pinyin(word, style=Style.TONE))
        candidates[word] = (key, word_score(word) + 10.0)
    words: Dict[str, List[Tuple[float, str]]] = defaultdict(list)
    for word, (key, score) in candidates.items():
        if all(syl in chars for syl in key.split("'")):
            words[key].append((score, word))
    return {
        "order": order,
        "given": "".join(dict.fromkeys(GIVEN)),
        "chars": chars,
        "surnames": surname_lines,
        "words": {key: [w for _, w in sorted(items, key=lambda item: (-item[0], item[1]))]
                  for key, items in sorted(words.items())},
    }


def table_lines(table: Dict[str, object], header: Iterable[str] = ()) -> List[str]:
    """The table as the lines of ``pinyin_table.txt`` (see the module docstring)."""
    lines = ["# " + line for line in header]
    lines.append("R " + str(table["order"]))
    lines.append("G " + str(table["given"]))
    for syl, chars in table["chars"].items():  # type: ignore[attr-defined]
        lines.append("C {} {}".format(syl, chars))
    for syl, names in table["surnames"].items():  # type: ignore[attr-defined]
        lines.append("N {} {}".format(syl, names))
    for key, words in table["words"].items():  # type: ignore[attr-defined]
        lines.append("W {} {}".format(key, " ".join(words)))
    return lines
