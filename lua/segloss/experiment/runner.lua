--- One training run of an experiment (internal): a U-Net trained with one
-- loss and one seed, validated every epoch, its best checkpoint kept.
-- @module segloss.experiment.runner

local metrics = require "segloss.metrics"
local F = require "segloss.experiment.files"

local R = {}

--- The metrics of a run, in the order of the tables and files.
R.METRICS = { "dice", "iou", "precision", "sensitivity", "specificity", "hd95", "assd", "fp_rate_empty" }

--- Validation of net on val: the loss (mean over batches weighted by their
-- size); the means of every metric over the images that have a target
-- (what a loss must find; nil when no image has one); and the
-- false-positive rate on the images without target: the share of them where
-- anything is predicted (nil when every image has a target). Kept apart so
-- that an empty prediction on an empty image — Dice 1 by the metrics'
-- convention — never lifts the score of a network that finds nothing.
function R.validate(net, crit, val, bs, threshold)
  net:evaluate()
  local sums, rows, lsum = {}, 0, 0
  local empty, fp = 0, 0
  for _, k in ipairs(R.METRICS) do sums[k] = 0 end
  for b = 1, val.n, bs do
    local m = math.min(bs, val.n - b + 1)
    local x, t = val.x:narrow(1, b, m), val.t:narrow(1, b, m)
    local y = net:forward(x)
    lsum = lsum + crit:value(y, t) * m
    local r = metrics.evaluate(y, t, { activation = "sigmoid", threshold = threshold })
    for _, row in ipairs(r.values) do
      -- row.empty: "both", "target" (only the target is empty), "pred" or nil
      if row.empty == "target" or row.empty == "both" then
        empty = empty + 1
        if row.empty == "target" then fp = fp + 1 end
      else
        rows = rows + 1
        for _, k in ipairs(R.METRICS) do
          if row[k] then sums[k] = sums[k] + row[k] end
        end
      end
    end
  end
  net:train()
  local res = { val_loss = lsum / val.n, empty_images = empty, target_images = rows }
  for _, k in ipairs(R.METRICS) do res[k] = rows > 0 and sums[k] / rows or nil end
  res.fp_rate_empty = empty > 0 and fp / empty or nil
  return res
end

-- the seed of the batches of one epoch: distinct for every (seed, epoch)
local function batch_seed(seed, epoch) return seed * 100003 + epoch end

--- Trains one run. job: {id, loss = {id, name, make}, seed}; cfg: the
-- checked options of run (train, val, model, epochs, batch, lr, optim,
-- threshold, augment); record: the run.json table without its results
-- (written as the run goes, complete = false); tick(epoch) after every
-- epoch. Returns the finished record and the seconds it took.
function R.train(job, cfg, record, dir, tick, clock)
  local segloss = require "segloss"
  local t0 = clock()
  segloss.seed(job.seed)
  local net = segloss.nn.UNet(cfg.model)
  local opt = segloss.optim[cfg.optim_class](net, { lr = cfg.lr })
  local crit = job.loss.make()
  local train, val = cfg.train, cfg.val
  local best, best_dice = nil, -math.huge
  record.curves = {}
  for epoch = 1, cfg.epochs do
    local sum, n = 0, 0
    local bopts = { shuffle = true, augment = cfg.augment, seed = batch_seed(job.seed, epoch) }
    for x, t in train:batches(cfg.batch, bopts) do
      net:zero_grad()
      local y = net:forward(x)
      local loss, grad = crit(y, t)
      net:backward(x, grad)
      opt:step()
      local m = x:size(1)
      sum, n = sum + loss * m, n + m
    end
    crit:step()
    local v = R.validate(net, crit, val, cfg.batch, cfg.threshold)
    v.epoch, v.train_loss = epoch, sum / n
    record.curves[epoch] = v
    if (v.dice or 0) > best_dice then
      best_dice, best = v.dice or 0, v
      net:save(F.join(dir, "best.npz"))
    end
    -- the curves so far, for whoever watches; complete = false until the end
    F.write(F.join(dir, "run.json"), F.json(record))
    tick(epoch)
  end
  record.final = record.curves[cfg.epochs]
  record.best = best
  record.best_epoch = best.epoch
  record.complete = true
  return record, clock() - t0
end

--- The curves as CSV, one line per epoch, numbers as in run.json.
function R.curves_csv(record)
  local cols = { "epoch", "train_loss", "val_loss" }
  for _, k in ipairs(R.METRICS) do cols[#cols + 1] = k end
  local lines = { table.concat(cols, ",") }
  for _, c in ipairs(record.curves) do
    local f = {}
    for i, k in ipairs(cols) do f[i] = c[k] == nil and "" or F.num(c[k]) end
    lines[#lines + 1] = table.concat(f, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

return R
