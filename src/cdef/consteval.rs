//! Integer constant expressions: array lengths, enum values, bitfield widths and
//! `static const` initializers.

use pest::iterators::Pair;

use super::parser::Rule;

/// What evaluating a constant expression gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i128),
    /// A floating literal took part: only a compiler can give the value.
    Float,
}

/// Why an expression has no integer value; the caller adds the position.
#[derive(Debug)]
pub struct EvalError {
    pub offset: usize,
    pub message: String,
}

fn fail<T>(pair: &Pair<Rule>, message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError {
        offset: pair.as_span().start(),
        message: message.into(),
    })
}

/// Evaluates `expr` (any rule of the expression grammar); `lookup` gives the value of an
/// identifier (enumerators, `#define`d and `static const` constants).
pub fn eval(pair: Pair<Rule>, lookup: &dyn Fn(&str) -> Option<i128>) -> Result<Value, EvalError> {
    match pair.as_rule() {
        Rule::initializer => eval(pair.into_inner().next().unwrap(), lookup),
        Rule::expr => eval_binary_chain(pair, lookup),
        Rule::unary => {
            let mut ops = Vec::new();
            let mut operand = None;
            for p in pair.into_inner() {
                if p.as_rule() == Rule::op_unary {
                    ops.push(p);
                } else {
                    operand = Some(p);
                }
            }
            let operand = operand.unwrap();
            let mut v = eval(operand, lookup)?;
            for op in ops.iter().rev() {
                v = match (op.as_str(), v) {
                    (_, Value::Float) if op.as_str() != "~" => Value::Float,
                    ("-", Value::Int(x)) => Value::Int(-x),
                    ("+", v) => v,
                    ("~", Value::Int(x)) => Value::Int(!x),
                    _ => return fail(op, "unsupported expression: '~' needs an integer"),
                };
            }
            Ok(v)
        }
        Rule::int_lit => match super::preprocess::parse_int_literal(pair.as_str()) {
            Some(v) => Ok(Value::Int(v)),
            None => fail(&pair, format!("invalid integer constant '{}'", pair.as_str())),
        },
        Rule::float_lit => Ok(Value::Float),
        Rule::char_lit => match char_value(pair.as_str()) {
            Some(v) => Ok(Value::Int(v)),
            None => fail(&pair, format!("invalid constant \"{}\"", pair.as_str())),
        },
        Rule::ident_ref => match lookup(pair.as_str()) {
            Some(v) => Ok(Value::Int(v)),
            None => fail(
                &pair,
                format!(
                    "unsupported expression: expected a simple numeric constant, got the unknown name '{}'",
                    pair.as_str()
                ),
            ),
        },
        Rule::unsupported_expr => fail(
            &pair,
            format!(
                "unsupported expression: expected a simple numeric constant, got '{}' (sizeof, casts and \
                 '!' are not evaluated by cdef)",
                pair.as_str()
            ),
        ),
        _ => fail(&pair, "unsupported expression: expected a simple numeric constant"),
    }
}

/// C precedence of a binary operator rule (higher binds tighter); all are left-associative.
fn precedence(op: Rule) -> u8 {
    match op {
        Rule::op_mul => 6,
        Rule::op_add => 5,
        Rule::op_shift => 4,
        Rule::op_band => 3,
        Rule::op_bxor => 2,
        _ => 1,
    }
}

/// `a op b op c ...` (the grammar gives the flat list): operator precedence by the
/// shunting-yard method. Operands are evaluated left to right and every operator is
/// applied as soon as its right operand is complete, the order a tree walk would take.
fn eval_binary_chain<'i>(
    pair: Pair<'i, Rule>,
    lookup: &dyn Fn(&str) -> Option<i128>,
) -> Result<Value, EvalError> {
    let mut inner = pair.into_inner();
    let first = inner.next().unwrap();
    let Some(mut op) = inner.next() else {
        return eval(first, lookup);
    };
    // (value, offset where the operand starts)
    let mut values: Vec<(Value, usize)> =
        vec![(eval(first.clone(), lookup)?, first.as_span().start())];
    let mut ops: Vec<Pair<'i, Rule>> = Vec::new();
    loop {
        let rhs = inner.next().unwrap();
        while ops
            .last()
            .is_some_and(|top| precedence(top.as_rule()) >= precedence(op.as_rule()))
        {
            reduce(&mut values, &mut ops)?;
        }
        ops.push(op);
        values.push((eval(rhs.clone(), lookup)?, rhs.as_span().start()));
        match inner.next() {
            Some(next) => op = next,
            None => break,
        }
    }
    while !ops.is_empty() {
        reduce(&mut values, &mut ops)?;
    }
    Ok(values.pop().unwrap().0)
}

fn reduce(values: &mut Vec<(Value, usize)>, ops: &mut Vec<Pair<Rule>>) -> Result<(), EvalError> {
    let op = ops.pop().unwrap();
    let (b, b_at) = values.pop().unwrap();
    let (a, a_at) = values.pop().unwrap();
    values.push((binary(&op, a, b, b_at)?, a_at));
    Ok(())
}

fn binary(op: &Pair<Rule>, a: Value, b: Value, rhs_at: usize) -> Result<Value, EvalError> {
    let (Value::Int(x), Value::Int(y)) = (a, b) else {
        return match op.as_str() {
            "+" | "-" | "*" | "/" => Ok(Value::Float),
            _ => fail(
                op,
                format!("unsupported expression: '{}' needs integers", op.as_str()),
            ),
        };
    };
    let overflow = || fail(op, "constant expression overflows");
    let v = match op.as_str() {
        "+" => x.checked_add(y),
        "-" => x.checked_sub(y),
        "*" => x.checked_mul(y),
        // C truncates toward zero, as Rust does.
        "/" | "%" if y == 0 => {
            return Err(EvalError {
                offset: rhs_at,
                message: "division by zero in constant expression".into(),
            })
        }
        "/" => x.checked_div(y),
        "%" => x.checked_rem(y),
        "<<" => {
            if !(0..128).contains(&y) {
                return overflow();
            }
            x.checked_shl(y as u32).filter(|r| r >> y == x)
        }
        ">>" => {
            if !(0..128).contains(&y) {
                return overflow();
            }
            Some(x >> y)
        }
        "&" => Some(x & y),
        "|" => Some(x | y),
        "^" => Some(x ^ y),
        other => return fail(op, format!("unsupported operator '{other}'")),
    };
    match v {
        Some(v) if v.unsigned_abs() < (1u128 << 80) => Ok(Value::Int(v)),
        _ => overflow(),
    }
}

/// The value of a C character literal (`'a'`, `'\n'`, `'\x41'`, `'\101'`).
pub fn char_value(lit: &str) -> Option<i128> {
    let body = lit.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut chars = body.chars();
    let first = chars.next()?;
    if first != '\\' {
        return if chars.next().is_none() {
            Some(first as i128)
        } else {
            None
        };
    }
    let rest: String = chars.collect();
    let simple = match rest.as_str() {
        "n" => Some(10),
        "t" => Some(9),
        "r" => Some(13),
        "0" => Some(0),
        "a" => Some(7),
        "b" => Some(8),
        "f" => Some(12),
        "v" => Some(11),
        "\\" => Some(92),
        "'" => Some(39),
        "\"" => Some(34),
        "?" => Some(63),
        _ => None,
    };
    if simple.is_some() {
        return simple;
    }
    if let Some(hex) = rest.strip_prefix('x') {
        return u8::from_str_radix(hex, 16).ok().map(|v| v as i128);
    }
    if !rest.is_empty() && rest.len() <= 3 && rest.chars().all(|c| c.is_digit(8)) {
        return u16::from_str_radix(&rest, 8)
            .ok()
            .filter(|v| *v < 256)
            .map(|v| v as i128);
    }
    None
}
