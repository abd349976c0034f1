;;; emacs_check.el --- Batch Emacs with lsp-mode and client-config/emacs: record the heatmap faces.
;; Environment: SALIENCE_EL (the config), SALIENCE_PROMPT (the file), SALIENCE_EMACS_OUT (JSON out).
;; Batch Emacs has no font-lock mode, so the check runs lsp-mode's fontification itself once tokens came.

(package-initialize)
(require 'lsp-mode)
(require 'json)
(setq lsp-auto-guess-root t lsp-enable-file-watchers nil lsp-restart 'ignore lsp-enable-snippet nil
      lsp-keep-workspace-alive nil lsp-session-file (expand-file-name "lsp-session" temporary-file-directory))
(load (getenv "SALIENCE_EL"))

(defun salience-check--cells ()
  "Character offset (0-based) -> the salience faces on it."
  (let (cells)
    (dotimes (i (1- (point-max)))
      (let* ((face (get-text-property (1+ i) 'face))
             (ours (seq-filter (lambda (f) (string-prefix-p "salience-" (symbol-name f)))
                               (if (listp face) face (list face)))))
        (when ours
          (push (cons (number-to-string i) (vconcat (sort (mapcar #'symbol-name ours) #'string<))) cells))))
    cells))

(defun salience-check--fontify ()
  (when (bound-and-true-p lsp--semantic-tokens-cache)
    (let ((font-lock-mode t))
      (font-lock-set-defaults)
      (funcall font-lock-fontify-region-function (point-min) (point-max)))))

(find-file (getenv "SALIENCE_PROMPT"))
(lsp)  ; the mode's `lsp-deferred' waits for the buffer to be displayed, which batch Emacs never does
(let ((deadline (+ (float-time) 150)) cells out)
  (while (and (null cells) (< (float-time) deadline))
    (accept-process-output nil 0.3)
    (salience-check--fontify)
    (setq cells (salience-check--cells)))
  (setq out (list (cons "mode" (symbol-name major-mode))
                  (cons "semantic" (if (bound-and-true-p lsp-semantic-tokens-mode) t :json-false))
                  (cons "cells" (or cells :json-false))))
  (with-temp-file (getenv "SALIENCE_EMACS_OUT") (insert (json-encode out))))
(kill-emacs 0)
