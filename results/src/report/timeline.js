// The timeline of report.html: draws #timeline-svg from #timeline-data.
// Only what is in view is drawn, so 100,000 operations stay responsive: at most
// MAX_RECTS op rects, the narrowest of the rest as per-pixel density marks.
// Text from the history only ever reaches the page through textContent.
(function () {
  'use strict';

  var MAX_RECTS = 5000;
  var STRIDE = 9;
  var LABEL_W = 130;
  var RIGHT = 14;
  var AXIS_H = 24;
  var LANE_H = 20;
  var BAR_Y = 3;
  var BAR_H = 11;
  var LEASE_Y = 15;
  var LEASE_H = 3;
  var MIN_SPAN = 1000; // 1 µs, in ns
  var OUTCOMES = ['ok', 'fail', 'info'];

  var section = document.getElementById('timeline');
  var svg = document.getElementById('timeline-svg');
  var dataEl = document.getElementById('timeline-data');
  var tip = document.getElementById('tl-tip');
  var status = document.getElementById('tl-status');
  if (!section || !svg || !dataEl || !tip) {
    return;
  }
  // The namespace of the inline <svg> the HTML parser made, for the elements we add.
  var SVGNS = svg.namespaceURI;
  var raw = JSON.parse(dataEl.textContent || '{}') || {};
  var arr = function (x) { return Array.isArray(x) ? x : []; };
  var lanes = arr(raw.lanes);
  var laneNodes = arr(raw.nodes);
  var kinds = arr(raw.kinds);
  var texts = arr(raw.text);
  var locks = arr(raw.locks);
  var labels = arr(raw.labels);
  var leases = arr(raw.leases);
  var nemesis = arr(raw.nemesis);
  var marks = arr(raw.marks);
  var flat = arr(raw.ops);
  var endNs = Math.max(Number(raw.end) || 0, 0) * 1000;
  var fullT1 = endNs > 0 ? endNs : 1e6;

  // Decode the ops: times come as deltas in µs, indexes as deltas.
  var n = Math.floor(flat.length / STRIDE);
  var start = new Float64Array(n);
  var stop = new Float64Array(n);
  var lane = new Int32Array(n);
  var code = new Int32Array(n);
  var idx = new Float64Array(n);
  var cidx = new Float64Array(n);
  var byIndex = new Map();
  var t = 0;
  var i0 = 0;
  for (var k = 0; k < n; k++) {
    var o = k * STRIDE;
    t += flat[o];
    i0 += flat[o + 4];
    start[k] = t * 1000;
    stop[k] = flat[o + 1] < 0 ? fullT1 : (t + flat[o + 1]) * 1000;
    lane[k] = flat[o + 2];
    code[k] = flat[o + 3];
    idx[k] = i0;
    cidx[k] = flat[o + 5] < 0 ? -1 : i0 + flat[o + 5];
    byIndex.set(i0, k);
  }
  var anomalies = new Set(arr(raw.anomalies));

  var view = { t0: 0, t1: fullT1 };
  var selected = -1; // op position, or -1
  var drawn = 0;
  var pending = false;

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVGNS, name);
    for (var a in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, a)) {
        e.setAttribute(a, attrs[a]);
      }
    }
    if (parent) {
      parent.appendChild(e);
    }
    return e;
  }

  function titled(e, text) {
    var ti = document.createElementNS(SVGNS, 'title');
    ti.textContent = text;
    e.appendChild(ti);
    return e;
  }

  function width() {
    var w = svg.clientWidth || (svg.parentNode && svg.parentNode.clientWidth) || 0;
    return w > LABEL_W + 100 ? w : 1000;
  }

  function msText(ns, digits) {
    return (ns / 1e6).toFixed(digits) + ' ms';
  }

  function durText(ns) {
    if (ns >= 1e9) { return (ns / 1e9).toFixed(3) + ' s'; }
    if (ns >= 1e6) { return (ns / 1e6).toFixed(3) + ' ms'; }
    return (ns / 1e3).toFixed(0) + ' µs';
  }

  function clampView(t0, t1) {
    var span = Math.max(t1 - t0, MIN_SPAN);
    var full = fullT1;
    if (span >= full) {
      return { t0: 0, t1: full };
    }
    if (t0 < 0) { t0 = 0; }
    if (t0 + span > full) { t0 = full - span; }
    return { t0: t0, t1: t0 + span };
  }

  function setView(t0, t1) {
    if (!isFinite(t0) || !isFinite(t1)) {
      return;
    }
    if (t1 < t0) {
      var s = t0; t0 = t1; t1 = s;
    }
    view = clampView(t0, t1);
  }

  function schedule() {
    if (pending) {
      return;
    }
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      draw();
    });
  }

  // Tick step: 1, 2 or 5 × 10^k ns, about every 110 px.
  function tickStep(span, px) {
    var raw = span / Math.max(px / 110, 1);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function tickLabel(v, step) {
    if (step >= 1e9) {
      return (v / 1e9).toFixed(Math.max(0, -Math.floor(Math.log10(step / 1e9)))) + ' s';
    }
    return (v / 1e6).toFixed(Math.max(0, Math.ceil(-Math.log10(step / 1e6) - 1e-9))) + ' ms';
  }

  function draw() {
    var W = width();
    var plotW = W - LABEL_W - RIGHT;
    var nl = lanes.length;
    var H = AXIS_H + Math.max(nl, 2) * LANE_H + 16;
    var t0 = view.t0;
    var t1 = view.t1;
    var scale = plotW / (t1 - t0);
    var x = function (tt) {
      var v = LABEL_W + (tt - t0) * scale;
      return v < LABEL_W - 2 ? LABEL_W - 2 : v > W - RIGHT + 2 ? W - RIGHT + 2 : v;
    };
    var laneTop = function (l) { return AXIS_H + l * LANE_H; };
    var bottom = AXIS_H + Math.max(nl, 2) * LANE_H;

    // The elements under the pointer are about to go: so is their tooltip.
    tip.hidden = true;
    svg.textContent = '';
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('height', String(H));
    var frag = document.createDocumentFragment();

    // Lanes, shaded per node so a node's processes read as one group.
    var g = el('g', { 'class': 'lanes' }, frag);
    var group = 0;
    for (var l = 0; l < nl; l++) {
      if (l > 0 && laneNodes[l] !== laneNodes[l - 1]) {
        group++;
        el('line', { 'class': 'lane-sep', x1: 0, x2: W, y1: laneTop(l), y2: laneTop(l) }, g);
      }
      if (group % 2 === 1) {
        el('rect', { 'class': 'lane-bg', x: 0, y: laneTop(l), width: W, height: LANE_H }, g);
      }
      // Cut to the label column (about 18 characters); the whole name on hover.
      var full = String(lanes[l]);
      var label = el('text', { x: 6, y: laneTop(l) + 13 }, g);
      label.textContent = full.length > 18 ? full.slice(0, 17) + '\u2026' : full;
      if (full.length > 18) titled(label, full);
    }

    // Time axis and grid.
    var ax = el('g', { 'class': 'axis-g' }, frag);
    el('line', { 'class': 'axis', x1: LABEL_W, x2: W - RIGHT, y1: AXIS_H - 0.5, y2: AXIS_H - 0.5 }, ax);
    var step = tickStep(t1 - t0, plotW);
    for (var v = Math.ceil(t0 / step) * step; v <= t1; v += step) {
      var tx = LABEL_W + (v - t0) * scale;
      el('line', { 'class': 'grid', x1: tx, x2: tx, y1: AXIS_H, y2: bottom }, ax);
      el('line', { 'class': 'axis', x1: tx, x2: tx, y1: AXIS_H - 5, y2: AXIS_H }, ax);
      var tl = el('text', { x: tx, y: AXIS_H - 8, 'text-anchor': 'middle' }, ax);
      tl.textContent = tickLabel(v, step);
    }

    // Faults in force, across all lanes.
    var ng = el('g', { 'class': 'nemesis-g' }, frag);
    for (var q = 0; q + 3 < nemesis.length; q += 4) {
      var ns0 = nemesis[q] * 1000;
      var ns1 = nemesis[q + 1] < 0 ? fullT1 : nemesis[q + 1] * 1000;
      if (ns1 < t0 || ns0 > t1) { continue; }
      var nx0 = x(ns0);
      var nx1 = x(ns1);
      titled(el('rect', {
        'class': 'nemesis', x: nx0, y: AXIS_H, width: Math.max(nx1 - nx0, 2), height: bottom - AXIS_H
      }, ng), String(labels[nemesis[q + 2]]));
      // The fault's name along its top edge, where there is room for it.
      var name = String(labels[nemesis[q + 3]]);
      var nameX = Math.max(nx0, LABEL_W) + 3;
      if (Math.min(nx1, W - RIGHT) - nameX > name.length * 6.2) {
        var nt = el('text', { 'class': 'nem-name', x: nameX, y: bottom + 12 }, ng);
        nt.textContent = name;
      }
    }
    for (var m = 0; m + 1 < marks.length; m += 2) {
      var mt = marks[m] * 1000;
      if (mt < t0 || mt > t1) { continue; }
      var mx = x(mt);
      var ml = el('line', { 'class': 'nem-mark', x1: mx, x2: mx, y1: AXIS_H, y2: bottom }, ng);
      titled(ml, String(labels[marks[m + 1]]));
    }

    // Leases: a thin band under the lane of the grant that started it. The
    // data is sorted by lane and start, so leases that touch on screen merge
    // into one band (zoomed out, a long run has tens of thousands).
    var lg = el('g', { 'class': 'leases-g' }, frag);
    var band = null;
    var leaseTitle = function (r) {
      var le = leases[r + 2] < 0 ? 'no deadline' : 'deadline ' + msText(leases[r + 2] * 1000, 3);
      return 'lease of lock ' + String(locks[leases[r + 3]]) + ', token ' + leases[r + 4] + ' (' +
        String(lanes[leases[r]]) + '): granted from ' + msText(leases[r + 1] * 1000, 3) + ', ' + le;
    };
    var flushBand = function () {
      if (!band) { return; }
      var text = band.n === 1 ? leaseTitle(band.first) : band.n + ' leases (' + String(lanes[band.lane]) +
        '), tokens ' + leases[band.first + 4] + ' to ' + leases[band.last + 4] + ', from ' +
        msText(leases[band.first + 1] * 1000, 3) + ': zoom in to see each';
      titled(el('rect', {
        'class': 'lease', x: band.x0, y: laneTop(band.lane) + LEASE_Y, width: Math.max(band.x1 - band.x0, 1), height: LEASE_H
      }, lg), text);
      band = null;
    };
    for (var r = 0; r + 4 < leases.length; r += 5) {
      var ls = leases[r + 1] * 1000;
      var le = leases[r + 2] < 0 ? fullT1 : leases[r + 2] * 1000;
      if (le < t0 || ls > t1) { continue; }
      var lx0 = x(ls);
      var lx1 = x(le);
      if (band && band.lane === leases[r] && lx0 <= band.x1 + 1) {
        band.x1 = Math.max(band.x1, lx1);
        band.n++;
        band.last = r;
      } else {
        flushBand();
        band = { lane: leases[r], x0: lx0, x1: lx1, n: 1, first: r, last: r };
      }
    }
    flushBand();

    // Ops in view: the widest (and every anomaly, and the selected one) as
    // rects, the rest as density marks.
    var inView = [];
    for (var j = 0; j < n; j++) {
      if (start[j] <= t1 && stop[j] >= t0) {
        inView.push(j);
      }
    }
    var rects = inView;
    var dense = [];
    var anomalyMarks = [];
    if (inView.length > MAX_RECTS) {
      // The selected op always gets its rect; otherwise the widest win.
      var rank = function (j) { return j === selected ? Infinity : stop[j] - start[j]; };
      var sorted = inView.slice().sort(function (a, b) { return rank(b) - rank(a) || a - b; });
      rects = sorted.slice(0, MAX_RECTS);
      dense = sorted.slice(MAX_RECTS);
    }
    if (dense.length > 0) {
      // One bit per outcome for each pixel column of each lane.
      var cols = Math.ceil(plotW) + 1;
      var masks = new Uint8Array(Math.max(nl, 1) * cols);
      for (var d = 0; d < dense.length; d++) {
        var dj = dense[d];
        var c0 = Math.max(0, Math.floor((start[dj] - t0) * scale));
        var c1 = Math.min(cols - 1, Math.floor((stop[dj] - t0) * scale));
        var bit = 1 << (code[dj] % 3);
        var base = lane[dj] * cols;
        if (anomalies.has(idx[dj])) {
          anomalyMarks.push(dj);
        }
        for (var c = c0; c <= c1; c++) {
          masks[base + c] |= bit;
        }
      }
      var dg = el('g', { 'class': 'dense-g' }, frag);
      for (var dl = 0; dl < nl; dl++) {
        var runStart = -1;
        var runClass = '';
        for (var cc = 0; cc <= cols; cc++) {
          var mask = cc < cols ? masks[dl * cols + cc] : 0;
          // A column with an unknown outcome shows as such (a timeout is
          // what one looks for), then failed, then ok.
          var cls = mask & 4 ? 'info' : mask & 2 ? 'fail' : mask & 1 ? 'ok' : '';
          if (cls !== runClass) {
            if (runClass) {
              el('rect', {
                'class': 'dense ' + runClass, x: LABEL_W + runStart, y: laneTop(dl) + BAR_Y,
                width: cc - runStart, height: BAR_H
              }, dg);
            }
            runStart = cc;
            runClass = cls;
          }
        }
      }
    }
    // An anomaly's op among the density marks still shows, as a tick.
    for (var am = 0; am < anomalyMarks.length; am++) {
      var aj = anomalyMarks[am];
      el('rect', {
        'class': 'anomaly-mark', x: x(start[aj]) - 1, y: laneTop(lane[aj]), width: Math.max(x(stop[aj]) - x(start[aj]), 2) + 2,
        height: BAR_H + 6
      }, frag);
    }
    var og = el('g', { id: 'timeline-ops' }, frag);
    for (var p = 0; p < rects.length; p++) {
      var oj = rects[p];
      var ox0 = x(start[oj]);
      var ox1 = x(stop[oj]);
      var cls2 = 'op ' + OUTCOMES[code[oj] % 3];
      if (anomalies.has(idx[oj])) { cls2 += ' anomaly'; }
      var attrs = {
        'class': cls2, x: ox0, y: laneTop(lane[oj]) + BAR_Y, width: Math.max(ox1 - ox0, 1.5), height: BAR_H,
        'data-op': idx[oj]
      };
      if (oj === selected) {
        attrs['class'] += ' selected';
        attrs.id = 'op-' + idx[oj];
      }
      el('rect', attrs, og);
    }
    // A guide across all lanes, so the selected op is found at a glance.
    if (selected >= 0 && start[selected] <= t1 && stop[selected] >= t0) {
      var gx = (x(start[selected]) + x(stop[selected])) / 2;
      el('line', { 'class': 'sel-mark', x1: gx, x2: gx, y1: AXIS_H, y2: bottom }, frag);
    }
    // Anomalies and the selection on top, so their outline is not covered.
    var top = og.querySelectorAll('rect.anomaly, rect.selected');
    for (var a = 0; a < top.length; a++) {
      og.appendChild(top[a]);
    }
    if (n === 0) {
      var empty = el('text', { 'class': 'tl-empty', x: LABEL_W + plotW / 2, y: AXIS_H + LANE_H + 4, 'text-anchor': 'middle' }, frag);
      empty.textContent = 'No operations were recorded.';
    }
    svg.appendChild(frag);

    drawn = rects.length;
    section.setAttribute('data-t0', String(Math.round(t0)));
    section.setAttribute('data-t1', String(Math.round(t1)));
    section.setAttribute('data-drawn', String(drawn));
    if (status) {
      var digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10((t1 - t0) / 1e6)) + 2));
      status.textContent = msText(t0, digits) + ' – ' + msText(t1, digits) + ' · ' + inView.length +
        ' of ' + n + ' operations in view' + (dense.length ? ', the ' + dense.length + ' shortest as density' : '');
    }
  }

  function tipText(j) {
    var o = j * STRIDE;
    var kind = String(kinds[Math.floor(code[j] / 3)]);
    var outcome = OUTCOMES[code[j] % 3];
    var lines = ['op ' + idx[j] + ' · ' + kind + ' · ' + (cidx[j] < 0 ? 'never completed' : outcome) +
      (anomalies.has(idx[j]) ? ' · named by an anomaly' : ''), String(lanes[lane[j]])];
    var tv = flat[o + 6];
    var cv = flat[o + 7];
    var ev = flat[o + 8];
    lines.push('#' + idx[j] + '  invoke  ' + kind + '  at ' + msText(start[j], 3) +
      (tv >= 0 ? '  ' + texts[tv] : ''));
    if (cidx[j] >= 0) {
      lines.push('#' + cidx[j] + '  ' + outcome + '  at ' + msText(stop[j], 3) + ' (after ' +
        durText(stop[j] - start[j]) + ')' + (cv >= 0 && cv !== tv ? '  ' + texts[cv] : ''));
    } else {
      lines.push('no completion before the history ended');
    }
    if (ev >= 0) {
      lines.push('error: ' + texts[ev]);
    }
    return lines.join('\n');
  }

  function opAt(target) {
    if (!target || !target.getAttribute || !target.classList || !target.classList.contains('op')) {
      return -1;
    }
    var k2 = byIndex.get(Number(target.getAttribute('data-op')));
    return k2 === undefined ? -1 : k2;
  }

  function moveTip(ev) {
    var box = tip.parentNode.getBoundingClientRect();
    var left = ev.clientX - box.left + 14;
    var topY = ev.clientY - box.top + 16;
    if (left + tip.offsetWidth > box.width) {
      left = Math.max(0, ev.clientX - box.left - tip.offsetWidth - 14);
    }
    if (topY + tip.offsetHeight > box.height) {
      topY = Math.max(0, ev.clientY - box.top - tip.offsetHeight - 10);
    }
    tip.style.left = left + 'px';
    tip.style.top = topY + 'px';
  }

  // Pointer: wheel zooms around the pointer, dragging pans, a click links.
  var drag = null;
  var dragged = false;

  function timeAt(clientX) {
    var box = svg.getBoundingClientRect();
    var W = width();
    var px = (clientX - box.left) * (W / (box.width || W));
    var f = (px - LABEL_W) / (W - LABEL_W - RIGHT);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    return { t: view.t0 + f * (view.t1 - view.t0), f: f };
  }

  function zoomAround(tt, f, factor) {
    var span = (view.t1 - view.t0) * factor;
    setView(tt - f * span, tt - f * span + span);
    schedule();
  }

  svg.addEventListener('wheel', function (ev) {
    if (ev.ctrlKey || ev.deltaY === 0) {
      return;
    }
    ev.preventDefault();
    var at = timeAt(ev.clientX);
    var unit = ev.deltaMode === 1 ? 40 : ev.deltaMode === 2 ? 800 : 1;
    var factor = Math.exp(Math.max(-1, Math.min(1, ev.deltaY * unit * 0.002)));
    zoomAround(at.t, at.f, factor);
  }, { passive: false });

  svg.addEventListener('mousedown', function (ev) {
    if (ev.button !== 0) {
      return;
    }
    ev.preventDefault();
    drag = { x: ev.clientX, t0: view.t0, t1: view.t1 };
    dragged = false;
  });

  window.addEventListener('mousemove', function (ev) {
    if (!drag) {
      return;
    }
    var dx = ev.clientX - drag.x;
    if (!dragged && Math.abs(dx) < 4) {
      return;
    }
    if (!dragged) {
      dragged = true;
      svg.classList.add('dragging');
      tip.hidden = true;
    }
    var box = svg.getBoundingClientRect();
    var W = width();
    var plotPx = (W - LABEL_W - RIGHT) * ((box.width || W) / W);
    var dt = -dx / plotPx * (drag.t1 - drag.t0);
    setView(drag.t0 + dt, drag.t1 + dt);
    schedule();
  });

  window.addEventListener('mouseup', function () {
    if (drag) {
      drag = null;
      svg.classList.remove('dragging');
    }
  });

  svg.addEventListener('click', function (ev) {
    if (dragged) {
      dragged = false;
      return;
    }
    var j = opAt(ev.target);
    if (j >= 0) {
      location.hash = 'op-' + idx[j];
    }
  });

  svg.addEventListener('mouseover', function (ev) {
    var j = opAt(ev.target);
    if (j < 0 || drag) {
      tip.hidden = true;
      return;
    }
    tip.textContent = tipText(j);
    tip.hidden = false;
    moveTip(ev);
  });
  svg.addEventListener('mousemove', function (ev) {
    if (!tip.hidden) {
      moveTip(ev);
    }
  });
  svg.addEventListener('mouseleave', function () {
    tip.hidden = true;
  });

  function button(id, action) {
    var b = document.getElementById(id);
    if (b) {
      // Drawn at once, so the view and data-t0/t1 are current when the click returns.
      b.addEventListener('click', function () { action(); draw(); });
    }
  }
  button('tl-zoom-in', function () {
    var c = (view.t0 + view.t1) / 2;
    var h = (view.t1 - view.t0) / 4;
    setView(c - h, c + h);
  });
  button('tl-zoom-out', function () {
    var c = (view.t0 + view.t1) / 2;
    var h = view.t1 - view.t0;
    setView(c - h, c + h);
  });
  button('tl-reset', function () { setView(0, fullT1); });

  // An op named by an anomaly links back to its story: the first line of
  // "What happened" that links to the op.
  var storyButton = document.getElementById('tl-story');
  var storyLine = null;
  function showStory(j) {
    storyLine = null;
    if (j >= 0 && anomalies.has(idx[j])) {
      var links = document.querySelectorAll('#story a[href="#op-' + idx[j] + '"]');
      if (links.length > 0) storyLine = links[0].closest('li, p, div') || links[0];
    }
    if (storyButton) storyButton.hidden = storyLine === null;
  }
  if (storyButton) {
    storyButton.addEventListener('click', function () {
      if (storyLine) storyLine.scrollIntoView({ block: 'center' });
    });
  }

  // `#op-N`: zoom to op N with some context around it, select it, show it.
  function followHash() {
    var m = /^#op-(\d+)$/.exec(location.hash || '');
    var j = m ? byIndex.get(Number(m[1])) : undefined;
    showStory(j === undefined ? -1 : j);
    if (j === undefined) {
      if (selected >= 0) {
        selected = -1;
        draw();
      }
      return;
    }
    selected = j;
    var d = stop[j] - start[j];
    var pad = Math.max(d * 4, 2e7);
    setView(start[j] - pad, stop[j] + pad);
    draw();
    section.scrollIntoView({ block: 'start' });
  }
  window.addEventListener('hashchange', followHash);
  window.addEventListener('resize', schedule);

  window.leaseholdTimeline = {
    zoom: function (a, b) {
      setView(Number(a), Number(b));
      draw();
      return { t0: view.t0, t1: view.t1, drawn: drawn };
    },
    view: function () {
      return { t0: view.t0, t1: view.t1, drawn: drawn };
    }
  };

  draw();
  followHash();
})();
