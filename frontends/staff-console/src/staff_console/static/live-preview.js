// The staff console's live template preview (progressive enhancement; served from
// /console-assets, no inline script, so the Content-Security-Policy stays 'self').
//
// A form with data-live-preview="<url>" and data-live-target="<element id>": whenever the
// editor types in it, the form (its CSRF token included) is POSTed to the url a moment
// later and the answer, a server-rendered fragment, replaces the target's content. The
// form's own buttons work as before; without JavaScript nothing here runs.
(function () {
  'use strict'
  if (!window.fetch || !window.FormData || !window.URLSearchParams) return
  var WAIT_MS = 250

  function enhance (form) {
    var url = form.getAttribute('data-live-preview')
    var target = document.getElementById(form.getAttribute('data-live-target'))
    if (!url || !target) return
    var timer = null
    var latest = 0

    function update () {
      var mine = ++latest
      fetch(url, {
        method: 'POST',
        body: new URLSearchParams(new FormData(form)),
        credentials: 'same-origin',
        headers: { Accept: 'text/html' }
      })
        .then(function (response) {
          // only the console's fragment: not a sign-in page after an expired session
          if (!response.ok || response.headers.get('X-Preview-Fragment') !== '1') return null
          return response.text()
        })
        .then(function (html) {
          if (html === null || mine !== latest) return // refused, or an older answer
          target.innerHTML = html
          target.setAttribute('data-live-updates', String(mine))
        })
        .catch(function () { /* the Preview button still works */ })
    }

    form.addEventListener('input', function () {
      window.clearTimeout(timer)
      timer = window.setTimeout(update, WAIT_MS)
    })
  }

  var forms = document.querySelectorAll('form[data-live-preview]')
  for (var i = 0; i < forms.length; i++) enhance(forms[i])
})()
